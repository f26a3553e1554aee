import { readFileSync } from 'node:fs';

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/**
 * The OS user PostgreSQL programs run as: null when we are not root (they run as ourselves),
 * else `postgres` (PostgreSQL refuses to run as root). Read from /etc/passwd, no subprocess.
 */
export function pgOsUser(name = process.env.PGWARDEN_PG_USER ?? 'postgres'): OsUser | null {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return null;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`running as root, but there is no '${name}' OS user to run PostgreSQL as (apt-get install postgresql creates it)`);
  const f = line.split(':');
  return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/' };
}
