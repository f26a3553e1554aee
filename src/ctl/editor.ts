/** The I/O of `edit-config`: the user's editor on a temp file, and `--apply`/`--replace` sources. */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { errorMessage } from '../util/errors.js';
import { failed, usage } from './args.js';
import { readStdin } from './terminal.js';

function which(cmd: string, path: string | undefined): string | null {
  for (const dir of (path ?? '').split(delimiter).filter(Boolean)) {
    try {
      accessSync(join(dir, cmd), constants.X_OK);
      return join(dir, cmd);
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * patronictl's `invoke_editor`: $EDITOR (run through the shell, so `EDITOR="code -w"` works), else
 * `editor` or `vi` from PATH, on `<scope>-config-*.yaml`; a non-zero exit aborts.
 */
export function editInEditor(text: string, scope: string, env: NodeJS.ProcessEnv): string {
  const editor = env.EDITOR || which('editor', env.PATH) || which('vi', env.PATH);
  if (!editor) throw failed('EDITOR environment variable is not set. editor or vi are not available');
  const dir = mkdtempSync(join(tmpdir(), `${scope.replace(/[^\w.-]/g, '_')}-config-`));
  const file = join(dir, 'config.yaml');
  try {
    writeFileSync(file, text, { mode: 0o600 });
    const r = spawnSync('/bin/sh', ['-c', `${editor} "$1"`, 'sh', file], { stdio: 'inherit', env });
    if (r.error) throw failed(`could not run the editor ${editor}: ${errorMessage(r.error)}`);
    if (r.status !== 0) throw failed(`Editor exited with return code ${r.status ?? r.signal}`);
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A YAML source of `--apply`/`--replace`: a file, or stdin for '-'. */
export async function readSource(name: string): Promise<string> {
  if (name === '-') return readStdin();
  try {
    return readFileSync(name, 'utf8');
  } catch (e) {
    throw usage(`cannot read ${name}: ${errorMessage(e)}`);
  }
}
