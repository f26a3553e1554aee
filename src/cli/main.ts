/**
 * `pgwarden` entry point. Only this file exits the process: subcommands throw ExitError/ConfigError
 * and the one catch below turns them into a message and an exit code.
 */
// First: it must run before anything imports pg.
import '../util/navigator.js';
import { Command, CommanderError } from 'commander';
import { ConfigError, ExitError, errorMessage } from '../util/errors.js';
import { VERSION } from '../version.js';
import { registerDaemon } from './daemon.js';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('pgwarden')
    .description('Kubernetes-native PostgreSQL high availability (Patroni-compatible)')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError();
  registerDaemon(program);
  // A daemon (one per PostgreSQL, always running) loads only what it runs: every MB of RSS counts.
  if (argv[2] !== 'daemon') {
    const [{ registerLocal }, { registerCtl }] = await Promise.all([import('./local.js'), import('./ctl.js')]);
    registerLocal(program);
    registerCtl(program);
  }
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = exitCodeFor(e);
  }
}

function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode;
  if (e instanceof ConfigError) {
    process.stderr.write(`pgwarden: invalid configuration: ${e.message}\n`);
    return 2;
  }
  if (e instanceof ExitError) {
    if (e.message) process.stderr.write(`pgwarden: ${e.message}\n`);
    return e.code;
  }
  process.stderr.write(`pgwarden: internal error (please report): ${errorMessage(e)}\n`);
  if (e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return 70;
}
