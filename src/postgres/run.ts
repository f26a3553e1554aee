/** Running PostgreSQL's programs: as the `postgres` OS user when we are root (PostgreSQL refuses root). */
import { spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
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

/** mkdir -p, then give the last component to the PostgreSQL user with `mode`. */
export function ensureDir(path: string, mode: number): void {
  if (!existsSync(path)) mkdirSync(path, { recursive: true, mode });
  chownToPg(path);
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
