/**
 * Is a postmaster running in a data dir? Judged from postmaster.pid and /proc, never from a PID alone:
 * a killed postmaster leaves postmaster.pid behind and PIDs wrap, so the PID it names may be dead,
 * a zombie, or another program by now.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The PID on the first line of postmaster.pid or a socket lock file. */
export function lockFilePid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** A running (not zombie) process named postgres. */
export function isLivePostgres(pid: number): boolean {
  try {
    if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'postgres') return false;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** The working directory of `pid` (every PostgreSQL server process works in its data dir). */
export function cwdOf(pid: number): string | null {
  try {
    return resolve(readlinkSync(`/proc/${pid}/cwd`));
  } catch {
    return null;
  }
}

/** The postmaster's PID if postmaster.pid names a live postgres process working in `dataDir`. */
export function runningPostmaster(dataDir: string): number | null {
  const pid = lockFilePid(join(dataDir, 'postmaster.pid'));
  if (pid === null || !isLivePostgres(pid)) return null;
  const cwd = cwdOf(pid);
  // cwd is unreadable only for another user's process when we are not root: comm is all we can check then.
  return cwd === null || cwd === resolve(dataDir) ? pid : null;
}

/** Live postgres processes working in `dataDir`: the backends of a killed postmaster until they notice. */
export function processesIn(dataDir: string): number[] {
  const out: number[] = [];
  const dir = resolve(dataDir);
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (pid > 0 && isLivePostgres(pid) && cwdOf(pid) === dir) out.push(pid);
  }
  return out;
}

/**
 * The server in `dataDir` says it accepts connections: postmaster.pid's status line (its 8th, PostgreSQL
 * 10+) reads `ready` (primary) or `standby` (hot standby), and the file names a live postmaster there.
 * What `pg_ctl start -w` checks, once per 100 ms.
 */
export function postmasterReady(dataDir: string): boolean {
  let lines: string[];
  try {
    lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return false;
  }
  const status = lines[7]?.trim();
  if (status !== 'ready' && status !== 'standby') return false;
  const pid = Number(lines[0]);
  return Number.isInteger(pid) && pid > 0 && runningPostmaster(dataDir) === pid;
}
