import type { Command } from 'commander';
import { registerKubeApiServerCommand } from '../kube/apiserver/index.js';
import { DEFAULT_DIR, localDown, localStatus, localUp, memberTable, fetchCluster } from '../local/run.js';
import { systemClock } from '../util/clock.js';
import { ExitError, errorMessage } from '../util/errors.js';

const out = { info: (line: string) => process.stdout.write(`${line}\n`) };

/** Failures of a local-cluster command are for people: a message and exit 1, not a stack trace. */
async function asExit(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    throw e instanceof ExitError ? e : new ExitError(errorMessage(e), 1);
  }
}

export function registerLocal(program: Command): void {
  const local = program.command('local').description('a whole cluster on this machine: real etcd + N PostgreSQL members');
  local
    .command('up')
    .description('start etcd and N members, wait until a leader and N-1 streaming replicas run, print the member table')
    .option('-n, --members <n>', 'number of members', '3')
    .option('-d, --dir <dir>', 'where data, configs and logs go', DEFAULT_DIR)
    .option('--timeout <seconds>', 'how long to wait for a healthy cluster', '180')
    .action(async (o: { members: string; dir: string; timeout: string }) => {
      const n = Number(o.members);
      if (!Number.isInteger(n) || n < 1 || n > 9) throw new ExitError(`--members: expected a whole number from 1 to 9, got ${o.members}`, 2);
      await asExit(async () => {
        const state = await localUp({ dir: o.dir, members: n, timeoutMs: Number(o.timeout) * 1000, clock: systemClock, out });
        out.info(memberTable(state, await fetchCluster(state)));
        out.info(`\nstatus: pgwarden local status --dir ${state.dir}\nstop:   pgwarden local down --dir ${state.dir}`);
      });
    });
  local
    .command('status')
    .description('print the member table of the local cluster')
    .option('-d, --dir <dir>', 'the cluster directory', DEFAULT_DIR)
    .action(async (o: { dir: string }) => {
      await asExit(async () => {
        out.info(await localStatus(o.dir));
      });
    });
  local
    .command('down')
    .description('stop every process the local cluster started (data is kept; `up` starts it again)')
    .option('-d, --dir <dir>', 'the cluster directory', DEFAULT_DIR)
    .action(async (o: { dir: string }) => {
      await asExit(() => localDown(o.dir, out));
    });
  registerKubeApiServerCommand(local);
}
