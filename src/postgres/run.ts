/** Running PostgreSQL's programs: as the `postgres` OS user when we are root (PostgreSQL refuses root). */
import { spawn } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pgOsUser, type OsUser } from '../util/users.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cachedUser: OsUser | null | undefined;
export function runAsUser(): OsUser | null {
  if (cachedUser === undefined) cachedUser = pgOsUser();
  return cachedUser;
}

export function runPg(
  bin: string,
  args: readonly string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; cwd?: string },
): Promise<RunResult> {
  const user = runAsUser();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      cwd: opts.cwd ?? '/',
      env: { ...process.env, LC_ALL: 'C', ...(user ? { HOME: user.home, USER: user.name } : {}), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
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
