/**
 * `pgwarden ctl`: cluster control, patronictl's verbs and flags. This file only maps the command line to
 * the verbs in src/ctl/verbs; usage errors exit 2, refused or failed requests exit 1.
 */
import { Command, CommanderError, Option } from 'commander';
import { parseRole, usage } from '../ctl/args.js';
import type { CtlContext } from '../ctl/context.js';
import { editInEditor, readSource } from '../ctl/editor.js';
import { withSession, type SessionOptions } from '../ctl/session.js';
import { editConfig, togglePause } from '../ctl/verbs/config.js';
import { reinit, reload, restart } from '../ctl/verbs/members.js';
import { flush } from '../ctl/verbs/flush.js';
import { dsn, history, list, showConfig } from '../ctl/verbs/read.js';
import { remove } from '../ctl/verbs/remove.js';
import { switchover } from '../ctl/verbs/switchover.js';
import { OUTPUT_FORMATS, type OutputFormat } from '../ctl/view.js';

interface GlobalOptions {
  configFile?: string;
  dcsUrl?: string;
  scope?: string;
  namespace?: string;
  insecure?: boolean;
  requestTimeout?: string;
}

const formatOption = (): Option => new Option('-f, --format <format>', 'output format').choices(OUTPUT_FORMATS).default('pretty');
const collect = (v: string, prev: string[]): string[] => [...prev, v];

function seconds(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw usage(`${flag}: expected a number of seconds > 0, got '${v}'`);
  return n;
}

function count(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw usage(`${flag}: expected a whole number ≥ 1, got '${v}'`);
  return n;
}

/** Run a verb with the session the global options describe; `clusters` are the positional cluster names. */
function run(cmd: Command, clusters: ReadonlyArray<string | undefined>, fn: (ctx: CtlContext) => Promise<void>): Promise<void> {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const o: SessionOptions = {
    configFile: g.configFile,
    dcsUrl: g.dcsUrl,
    scope: g.scope,
    namespace: g.namespace,
    insecure: g.insecure,
    requestTimeoutS: seconds(g.requestTimeout, '--request-timeout'),
  };
  return withSession(o, clusters.filter((c): c is string => c !== undefined), fn);
}

interface LeaderOptions {
  leader?: string;
  primary?: string;
  master?: string;
}

const leaderOf = (o: LeaderOptions): string | undefined => o.leader ?? o.primary ?? o.master;

/** Commander's own errors (unknown option, missing argument) are usage errors: exit code 2. */
function usageExit(err: CommanderError): never {
  if (err.exitCode === 0) throw err;
  throw new CommanderError(2, err.code, err.message);
}

export function registerCtl(program: Command): void {
  const ctl = program
    .command('ctl')
    .description('control a cluster: list, switchover, restart, pause, edit-config … (patronictl equivalent)')
    .option('-c, --config-file <file>', "the daemon's Patroni-format config (PATRONI_* variables apply); default $PATRONICTL_CONFIG_FILE")
    .option('-d, --dcs-url <url>', 'the etcd v3 store, e.g. http://127.0.0.1:2379 (instead of or over the config)')
    .option('--scope <name>', 'the cluster name (default: scope from the config)')
    .option('--namespace <prefix>', 'the store prefix (default: namespace from the config, else /service)')
    .option('-k, --insecure', 'do not verify the certificates of https REST APIs')
    .option('--request-timeout <seconds>', 'how long a switchover/restart/reinitialize request may take', '120')
    .exitOverride(usageExit);

  for (const [name, desc, topology] of [
    ['list', 'list the members of the cluster', false],
    ['topology', 'the members as a tree: cascading replicas under their upstream', true],
  ] as const) {
    const c = ctl
      .command(name)
      .description(desc)
      .argument('[cluster...]', 'must match the configured scope')
      .option('-W', 'refresh every 2 seconds')
      .option('-w, --watch <seconds>', 'refresh every this many seconds')
      .option('--watch-count <n>', 'with a watch: stop after this many refreshes');
    if (!topology) c.addOption(formatOption()).option('-e, --extended', 'show pending restart, scheduled restart and tags always').option('-t, --timestamp', 'print the time first');
    c.action((clusters: string[], o: { W?: boolean; watch?: string; watchCount?: string; format?: OutputFormat; extended?: boolean; timestamp?: boolean }, cmd: Command) =>
      run(cmd, clusters, (ctx) =>
        list(ctx, {
          fmt: topology ? 'topology' : (o.format ?? 'pretty'),
          extended: o.extended,
          timestamp: o.timestamp,
          watchS: seconds(o.watch, '--watch') ?? (o.W ? 2 : undefined),
          watchCount: count(o.watchCount, '--watch-count'),
        }),
      ),
    );
  }

  ctl
    .command('switchover')
    .description('hand the leader role to another member, now or at a scheduled time')
    .argument('[cluster]', 'must match the configured scope')
    .option('--leader <name>', 'the current leader')
    .addOption(new Option('--primary <name>', 'the current leader (same as --leader)'))
    .addOption(new Option('--master <name>').hideHelp())
    .option('--candidate <name>', 'the member to become leader (default: the best one)')
    .option('--scheduled <time>', "ISO-8601 time with a zone, or 'now'")
    .option('--force', 'do not ask')
    .action((cluster: string | undefined, o: LeaderOptions & { candidate?: string; scheduled?: string; force?: boolean }, cmd: Command) =>
      run(cmd, [cluster], (ctx) =>
        switchover(ctx, { action: 'switchover', leader: leaderOf(o), candidate: o.candidate, scheduled: o.scheduled, force: o.force === true }),
      ),
    );

  ctl
    .command('failover')
    .description('make a replica the leader (also when the leader is unhealthy)')
    .argument('[cluster]', 'must match the configured scope')
    .option('--leader <name>', 'the current leader (makes it a switchover)')
    .addOption(new Option('--primary <name>', 'the current leader (same as --leader)'))
    .addOption(new Option('--master <name>').hideHelp())
    .option('--candidate <name>', 'the member to become leader')
    .option('--force', 'do not ask')
    .action((cluster: string | undefined, o: LeaderOptions & { candidate?: string; force?: boolean }, cmd: Command) => {
      const leader = leaderOf(o);
      return run(cmd, [cluster], (ctx) => switchover(ctx, { action: leader ? 'switchover' : 'failover', leader, candidate: o.candidate, force: o.force === true }));
    });

  ctl
    .command('restart')
    .description('restart PostgreSQL on members (all, or those named / with a role)')
    .argument('<cluster>', 'must match the configured scope')
    .argument('[members...]')
    .option('-r, --role <role>', 'only members with this role', 'any')
    .option('--any', 'restart a single member only')
    .option('--scheduled <time>', "ISO-8601 time with a zone, or 'now'")
    .option('--pg-version <version>', 'only if the PostgreSQL version is lower than this')
    .option('--pending', 'only members with a pending restart')
    .option('--timeout <seconds>', 'fail (and fail over if the primary) when the restart takes longer')
    .option('--force', 'do not ask')
    .action(
      (
        cluster: string,
        members: string[],
        o: { role: string; any?: boolean; scheduled?: string; pgVersion?: string; pending?: boolean; timeout?: string; force?: boolean },
        cmd: Command,
      ) =>
        run(cmd, [cluster], (ctx) =>
          restart(ctx, {
            members,
            role: parseRole(o.role),
            any: o.any,
            scheduled: o.scheduled,
            pgVersion: o.pgVersion,
            pending: o.pending,
            timeout: o.timeout,
            force: o.force === true,
          }),
        ),
    );

  ctl
    .command('reload')
    .description('reload the configuration of members')
    .argument('<cluster>', 'must match the configured scope')
    .argument('[members...]')
    .option('-r, --role <role>', 'only members with this role', 'any')
    .option('--force', 'do not ask')
    .action((cluster: string, members: string[], o: { role: string; force?: boolean }, cmd: Command) =>
      run(cmd, [cluster], (ctx) => reload(ctx, { members, role: parseRole(o.role), force: o.force === true })),
    );

  ctl
    .command('reinit')
    .description('rebuild replicas from the leader (their data directory is replaced)')
    .argument('<cluster>', 'must match the configured scope')
    .argument('[members...]')
    .option('--force', 'do not ask; cancel a reinitialization in progress')
    .option('--wait', 'wait until the reinitialization completes')
    .option('--wait-timeout <seconds>', 'with --wait: give up after this long', '3600')
    .action((cluster: string, members: string[], o: { force?: boolean; wait?: boolean; waitTimeout: string }, cmd: Command) =>
      run(cmd, [cluster], (ctx) => reinit(ctx, { members, force: o.force === true, wait: o.wait === true, waitTimeoutMs: seconds(o.waitTimeout, '--wait-timeout')! * 1000 })),
    );

  for (const [name, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    ctl
      .command(name)
      .description(paused ? 'maintenance mode: no automatic failover, members leave PostgreSQL alone' : 'leave maintenance mode')
      .argument('[cluster]', 'must match the configured scope')
      .option('--wait', `wait until every member reports ${paused ? 'pause' : 'no pause'} (GET /patroni)`)
      .option('--wait-timeout <seconds>', 'with --wait: give up after this long (default 2 × loop_wait + 10)')
      .action((cluster: string | undefined, o: { wait?: boolean; waitTimeout?: string }, cmd: Command) => {
        const t = seconds(o.waitTimeout, '--wait-timeout');
        return run(cmd, [cluster], (ctx) => togglePause(ctx, { paused, wait: o.wait === true, ...(t !== undefined ? { waitTimeoutMs: t * 1000 } : {}) }));
      });
  }

  ctl
    .command('show-config')
    .description('print the dynamic configuration (YAML)')
    .argument('[cluster]', 'must match the configured scope')
    .action((cluster: string | undefined, _o: unknown, cmd: Command) => run(cmd, [cluster], (ctx) => showConfig(ctx)));

  ctl
    .command('edit-config')
    .description('change the dynamic configuration: $EDITOR, or --set/--pg/--apply/--replace; shows a diff and asks')
    .argument('[cluster]', 'must match the configured scope')
    .option('-q, --quiet', 'do not show the changes')
    .option('-s, --set <key=value>', 'set a value (dotted path, YAML value; empty deletes), repeatable', collect, [])
    .option('-p, --pg <param=value>', 'set a PostgreSQL parameter (postgresql.parameters.<param>), repeatable', collect, [])
    .option('--apply <file>', "merge a YAML file into the config ('-' reads stdin)")
    .option('--replace <file>', "replace the config with a YAML file ('-' reads stdin)")
    .option('--force', 'do not ask')
    .action((cluster: string | undefined, o: { quiet?: boolean; set: string[]; pg: string[]; apply?: string; replace?: string; force?: boolean }, cmd: Command) =>
      run(cmd, [cluster], (ctx) =>
        editConfig(ctx, {
          sets: o.set,
          pgs: o.pg,
          apply: o.apply,
          replace: o.replace,
          quiet: o.quiet === true,
          force: o.force === true,
          readSource,
          edit: async (text) => editInEditor(text, ctx.scope, process.env),
        }),
      ),
    );

  ctl
    .command('history')
    .description('timeline switches: failovers and switchovers')
    .argument('[cluster]', 'must match the configured scope')
    .addOption(formatOption())
    .action((cluster: string | undefined, o: { format: OutputFormat }, cmd: Command) => run(cmd, [cluster], (ctx) => history(ctx, o.format)));

  ctl
    .command('dsn')
    .description('connection parameters of the leader (or a member with a role, or a named member)')
    .argument('[cluster]', 'must match the configured scope')
    .option('-r, --role <role>', 'leader, primary, standby-leader, replica, standby or any')
    .option('-m, --member <name>', 'this member')
    .action((cluster: string | undefined, o: { role?: string; member?: string }, cmd: Command) =>
      run(cmd, [cluster], (ctx) => dsn(ctx, { role: o.role === undefined ? undefined : parseRole(o.role), member: o.member })),
    );

  ctl
    .command('flush')
    .description('cancel scheduled restarts (of all or the named members) or the scheduled switchover')
    .argument('<cluster>', 'must match the configured scope')
    .argument('<args...>', '[members…] restart|switchover')
    .option('-r, --role <role>', 'only members with this role', 'any')
    .option('--force', 'do not ask')
    .action((cluster: string, args: string[], o: { role: string; force?: boolean }, cmd: Command) => {
      const target = args.at(-1);
      if (target !== 'restart' && target !== 'switchover') throw usage(`flush: the last argument must be restart or switchover, got '${String(target)}'`);
      return run(cmd, [cluster], (ctx) => flush(ctx, { target, members: args.slice(0, -1), role: parseRole(o.role), force: o.force === true }));
    });

  ctl
    .command('remove')
    .description("delete the cluster's keys from the store (asks for the cluster name, then \"Yes I am aware\")")
    .argument('<cluster>', 'must match the configured scope')
    .addOption(formatOption())
    .action((cluster: string, o: { format: OutputFormat }, cmd: Command) => run(cmd, [cluster], (ctx) => remove(ctx, o.format)));
}
