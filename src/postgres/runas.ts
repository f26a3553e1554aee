/**
 * Running PostgreSQL's programs as the right OS user: PostgreSQL refuses to run as root, so a root
 * daemon runs every program (initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata …) as `postgres`
 * through spawn's uid/gid (no su/runuser in between), and gives it the files it must own.
 */
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, chownSync, closeSync, constants, existsSync, mkdirSync, openSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pgOsUser, type OsUser } from '../util/users.js';

export type { OsUser };

export interface RunResult {
  /** null when the program was killed (by our timeout or a signal). */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

let cachedUser: OsUser | null | undefined;

/** The OS user PostgreSQL programs run as; null when we are not root (they run as ourselves). */
export function runAsUser(): OsUser | null {
  if (cachedUser === undefined) cachedUser = resolvePgUser();
  return cachedUser;
}

/** /etc/passwd first; `id` as a fallback for users that come from NSS (LDAP, sssd) rather than the file. */
function resolvePgUser(): OsUser | null {
  try {
    return pgOsUser();
  } catch (e) {
    const name = process.env.PGWARDEN_PG_USER ?? 'postgres';
    try {
      const id = (flag: string) => Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
      const uid = id('-u');
      const gid = id('-g');
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { name, uid, gid, home: '/' };
    } catch {
      // no such user either way: report the first, clearer error
    }
    throw e;
  }
}

/** Output kept per stream: enough for any error message, bounded for chatty programs. */
const MAX_OUTPUT = 1 << 20;

function pgEnv(user: OsUser | null, extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  // LC_ALL=C: pg_controldata and friends print translated labels otherwise.
  return { ...process.env, LC_ALL: 'C', ...(user ? { HOME: user.home, USER: user.name, LOGNAME: user.name } : {}), ...extra };
}

/**
 * Start a server (the postmaster) as `pg_ctl start -l logFile` does, without pg_ctl's two shells and its
 * `postgres -V`: in its own session, stdin from /dev/null, output appended to `logFile`. It outlives this
 * process; while we live, we reap it. `exited` settles when it ends (rejects when it cannot be started).
 */
export function spawnServer(bin: string, args: readonly string[], logFile: string): { pid: number | undefined; exited: Promise<RunResult> } {
  const user = runAsUser();
  const out = openSync(logFile, 'a', 0o600);
  try {
    const child = spawn(bin, args, {
      cwd: '/',
      env: pgEnv(user),
      stdio: ['ignore', out, out],
      detached: true,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    child.unref();
    const exited = new Promise<RunResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve({ code, stdout: '', stderr: signal ? `killed by ${signal}` : '', timedOut: false }));
    });
    return { pid: child.pid, exited };
  } finally {
    closeSync(out);
  }
}

/**
 * Run a PostgreSQL program to completion (as the PostgreSQL OS user when we are root), killed after
 * `timeoutMs`. Resolves with its exit code and output; rejects only when it cannot be started at all.
 */
export function runPg(
  bin: string,
  args: readonly string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string; signal?: AbortSignal },
): Promise<RunResult> {
  const user = runAsUser();
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      resolve({ code: null, stdout: '', stderr: 'not started: cancelled', timedOut: false });
      return;
    }
    // A cancellable program runs in a process group of its own, and is stopped with all of it: pg_basebackup
    // forks a WAL streamer that outlives a parent killed by a signal (its atexit cleanup does not run), and a
    // replica method script may start programs of its own. The group is ours while any of them lives.
    const group = opts.signal !== undefined;
    const child = spawn(bin, args, {
      // '/' rather than ours: the PostgreSQL user may not be allowed into our working directory.
      cwd: opts.cwd ?? '/',
      env: pgEnv(user, opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: group,
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    const kill = (sig: NodeJS.Signals): void => {
      if (group && child.pid) {
        try {
          process.kill(-child.pid, sig);
          return;
        } catch {
          // the group is gone already
        }
      }
      child.kill(sig);
    };
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < MAX_OUTPUT) stderr += d.toString();
    });
    const timer = setTimeout(() => {
      timedOut = true;
      kill('SIGKILL');
    }, opts.timeoutMs);
    // Cancelled (a shutdown): the program is asked to stop as a service manager would ask it.
    const cancel = (): void => kill('SIGTERM');
    opts.signal?.addEventListener('abort', cancel, { once: true });
    const done = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', cancel);
    };
    child.on('error', (e) => {
      done();
      reject(e);
    });
    child.on('close', (code) => {
      done();
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/**
 * mkdir -p, then give `path` to the PostgreSQL user with `mode`. Parents we have to create are made
 * 0755 and given to the PostgreSQL user too (it must reach the data dir and may keep its socket there);
 * parents that exist are left alone.
 */
export function ensureDir(path: string, mode: number): void {
  const parent = dirname(path);
  if (parent !== path && !existsSync(parent)) ensureDir(parent, 0o755);
  if (!existsSync(path)) mkdirSync(path, { mode });
  chownToPg(path);
}

/** Can the PostgreSQL user create files in `dir`? (A permission-bit check: no ACLs.) */
export function writableByPg(dir: string): boolean {
  const user = runAsUser();
  try {
    if (!user) {
      accessSync(dir, constants.W_OK | constants.X_OK);
      return true;
    }
    const st = statSync(dir);
    if (!st.isDirectory()) return false;
    if (st.uid === user.uid) return (st.mode & 0o300) === 0o300;
    if (st.gid === user.gid) return (st.mode & 0o030) === 0o030;
    return (st.mode & 0o003) === 0o003;
  } catch {
    return false;
  }
}

export function chownToPg(path: string): void {
  const user = runAsUser();
  if (user) chownSync(path, user.uid, user.gid);
}

/** Write a file owned by the PostgreSQL user. */
export function writePgFile(path: string, content: string, mode = 0o600): void {
  writeFileSync(path, content, { mode });
  chownToPg(path);
}
