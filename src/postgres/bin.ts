import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, PostgresError } from '../util/errors.js';

/**
 * Where PostgreSQL's programs are: `postgresql.bin_dir`, else `pg_config --bindir`, else the newest
 * `/usr/lib/postgresql/<major>/bin` (never a hard-coded major version).
 */
export function findBinDir(configured?: string): string {
  if (configured) {
    if (!existsSync(join(configured, 'pg_ctl'))) throw new ConfigError('postgresql.bin_dir', `no pg_ctl in ${configured}`);
    return configured;
  }
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (dir && existsSync(join(dir, 'pg_ctl'))) return dir;
  } catch {
    // no pg_config on PATH (Debian ships it as a wrapper in postgresql-common or libpq-dev)
  }
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => /^\d+(\.\d+)?$/.test(d) && existsSync(join(root, d, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (majors[0]) return join(root, majors[0], 'bin');
  throw new PostgresError('PostgreSQL binaries not found: apt-get install postgresql (or set postgresql.bin_dir)');
}
