/**
 * bench/memory — a member daemon's memory against Patroni's on the same machine, and against the floors
 * of the two runtimes. Runs bench/failover's 3-member cluster on each engine and measures its daemons at
 * idle; beside pgwarden's daemons, on the same etcd, node processes with the daemons' node flags: one
 * doing nothing, one running only the etcd3 client (bundled as the daemon is, doing a member's store
 * calls each loop_wait: bench/etcd3-probe.ts), and one making the same calls as Patroni makes them, JSON
 * over HTTP/1.1 to etcd's gateway (bench/etcd-gateway-probe.ts); beside Patroni's, python3 doing nothing. Prints each
 * process's RSS, private memory (USS) and PSS, and its RSS as a ratio of Patroni's daemon.
 *
 *   node --import tsx bench/memory.ts [--ttl 20 --loop-wait 1 --retry-timeout 3] [--only pgwarden|patroni] [--idle 30]
 *
 * A script, not a test: it asserts nothing and its numbers are printed, not compared to thresholds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { BUNDLE_OPTIONS } from '../scripts/bundle-options.mjs';
import { daemonNodeFlags, type LocalState } from '../src/local/cluster.js';
import { bootstrap, commonOptions, enginesFrom, fmt, idleUsage, log, memoryOf, newCluster, tableRow, teardown, timingFrom, type Memory } from './lib.js';

const { values: args } = parseArgs({
  options: {
    ...commonOptions({ ttl: 20, loopWait: 1, retryTimeout: 3 }),
    idle: { type: 'string', default: '30' },
  },
});

const timing = timingFrom(args);
const idleS = Number(args.idle);
const here = dirname(fileURLToPath(import.meta.url));

interface Row {
  label: string;
  mem: Memory;
}

interface Floor {
  label: string;
  child: ChildProcess;
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  let patroni: number | undefined;
  const work = mkdtempSync('/tmp/pgwarden-bench-memory-');
  try {
    for (const engine of enginesFrom(args.only)) {
      log(`\n=== ${engine} (ttl ${timing.ttl}, loop_wait ${timing.loopWait}, retry_timeout ${timing.retryTimeout}) ===`);
      const { dir, state } = await newCluster(engine, timing, 'pgwarden-bench-memory');
      try {
        await bootstrap(state);
        const floors = engine === 'pgwarden' ? await nodeFloors(state, work) : [pythonFloor()];
        try {
          const daemons = await idleUsage(state, idleS * 1000);
          rows.push({ label: `${engine} daemon (mean of ${state.members.length})`, mem: daemons });
          if (engine === 'patroni') patroni = daemons.rssMB;
          for (const f of floors) {
            if (f.child.exitCode !== null || f.child.signalCode !== null) throw new Error(`${f.label} exited early (${f.child.exitCode ?? f.child.signalCode})`);
            rows.push({ label: f.label, mem: memoryOf(f.child.pid!) });
          }
        } finally {
          for (const f of floors) if (f.child.exitCode === null && f.child.signalCode === null) f.child.kill('SIGKILL');
        }
      } finally {
        await teardown(dir);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const widths = [52, 9, 9, 9, 15];
  log('\n' + tableRow(['process, idle', 'RSS MB', 'USS MB', 'PSS MB', 'RSS / Patroni'], widths));
  for (const r of rows) {
    const ratio = patroni ? (r.mem.rssMB / patroni).toFixed(2) : '-';
    log(tableRow([r.label, fmt(r.mem.rssMB, 1), fmt(r.mem.ussMB, 1), fmt(r.mem.pssMB, 1), ratio], widths));
  }
}

/** The node floors beside pgwarden's daemons: an empty process and the etcd3 client alone, both with the daemons' flags. */
async function nodeFloors(state: LocalState, work: string): Promise<Floor[]> {
  const probe = await bundle(work, 'etcd3-probe');
  const gateway = await bundle(work, 'etcd-gateway-probe');
  const lifetime = String(idleS + 60);
  const flags = daemonNodeFlags('etcd');
  const node = (extra: string[]) => spawn(process.execPath, [...flags, ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
  const empty = node(['-e', `setTimeout(() => {}, ${lifetime}000)`]);
  const probeArgs = (name: string) => [`127.0.0.1:${state.etcd.clientPort}`, `/service/${name}/`, String(timing.ttl), String(timing.loopWait), lifetime];
  const client = node([probe, ...probeArgs('probe')]);
  const json = node([gateway, ...probeArgs('gateway-probe')]);
  const floors = [
    { label: 'node, nothing loaded (daemon flags)', child: empty },
    { label: 'node, only the etcd3 client (daemon flags)', child: client },
    { label: "node, only etcd's JSON gateway over node:http", child: json },
  ];
  try {
    await Promise.all([untilWorking(client, 30_000), untilWorking(json, 30_000)]);
  } catch (e) {
    for (const f of floors) f.child.kill('SIGKILL');
    throw e;
  }
  return floors;
}

/** Until a probe says its calls work (its member key read back), at most `ms`. */
function untilWorking(probe: ChildProcess, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`a store probe did not work within ${ms / 1000} s`)), ms);
    probe.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('working')) {
        clearTimeout(timer);
        resolve();
      }
    });
    probe.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`a store probe exited (${code})`));
    });
  });
}

function pythonFloor(): Floor {
  return { label: 'python3, nothing loaded', child: spawn('python3', ['-c', `import time; time.sleep(${idleS + 60})`], { stdio: 'ignore' }) };
}

/** bench/<name>.ts bundled like the daemon (scripts/bundle.mjs), with etcd3's protos where it looks for them. */
async function bundle(work: string, name: string): Promise<string> {
  const outfile = join(work, 'probe', `${name}.mjs`);
  await build({
    ...BUNDLE_OPTIONS,
    entryPoints: [join(here, `${name}.ts`)],
    outfile,
  });
  // etcd3 reads `${__dirname}/../proto/rpc.proto`.
  const require = createRequire(join(here, '..', 'package.json'));
  cpSync(join(dirname(require.resolve('etcd3/package.json')), 'proto'), join(work, 'proto'), { recursive: true });
  return outfile;
}

await main();
