/**
 * Patroni's callbacks (`postgresql.callbacks.{on_start,on_stop,on_restart,on_reload,on_role_change}`)
 * and `postgresql.pre_promote`. A callback runs as `<command…> <action> <role> <scope>` without blocking
 * anything: one at a time (a new one kills the previous, with its children), on_reload on its own
 * track, as Patroni's CallbackExecutor. Its exit status is logged, never acted on. pre_promote is the
 * one script that is waited for: a non-zero exit cancels the promotion.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { errorMessage } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export type CallbackAction = 'on_start' | 'on_stop' | 'on_restart' | 'on_reload' | 'on_role_change';
/** Patroni 3.0 role names, as callbacks receive them. */
export type CallbackRole = 'master' | 'replica' | 'standby_leader';
export type Callbacks = Partial<Record<CallbackAction, string>>;

/** Python's shlex.split (POSIX mode): words, '…' and "…" quoting, backslash escapes. */
export function splitCommand(cmd: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < cmd.length && '\\"$`\n'.includes(cmd[i + 1]!)) cur += cmd[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < cmd.length) {
      cur += cmd[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new Error(`unterminated quote in command: ${cmd}`);
  if (inWord) out.push(cur);
  return out;
}

function killGroup(p: ChildProcess | null): void {
  // exitCode/signalCode are set once Node reaped it: the PID (and its group) may be someone else's then.
  if (!p || p.pid === undefined || p.exitCode !== null || p.signalCode !== null) return;
  try {
    process.kill(-p.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export class CallbackRunner {
  private running: ChildProcess | null = null;
  private reloading: ChildProcess | null = null;

  constructor(
    private readonly opts: { callbacks: () => Callbacks | undefined; scope: string; log: Logger },
  ) {}

  /** Start the callback for `action`, if one is configured; returns at once. */
  call(action: CallbackAction, role: CallbackRole): void {
    const cmd = this.opts.callbacks()?.[action];
    if (!cmd) return;
    let argv: string[];
    try {
      argv = [...splitCommand(cmd), action, role, this.opts.scope];
    } catch (e) {
      this.opts.log.error({ action, err: errorMessage(e) }, 'callback not run');
      return;
    }
    if (action === 'on_reload') killGroup(this.reloading);
    else killGroup(this.running);
    const log = this.opts.log.child({ callback: action, role });
    // Its own process group: a killed callback takes its children with it.
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: 'ignore' });
    child.on('error', (e) => log.warn({ err: errorMessage(e) }, 'callback could not be started'));
    child.on('exit', (code, signal) => {
      if (code === 0) log.info('callback finished');
      else log.warn({ code, signal }, 'callback failed (ignored)');
    });
    child.unref();
    if (action === 'on_reload') this.reloading = child;
    else this.running = child;
  }

  /**
   * Run `pre_promote` and wait for it (bounded by `timeoutMs`): true when it exited with 0 or none is
   * configured. A script that cannot start, fails or overruns cancels the promotion.
   */
  async prePromote(cmd: string | undefined, timeoutMs: number): Promise<boolean> {
    if (!cmd) return true;
    const log = this.opts.log.child({ script: 'pre_promote' });
    let argv: string[];
    try {
      argv = splitCommand(cmd);
    } catch (e) {
      log.error({ err: errorMessage(e) }, 'pre_promote script not run: promotion cancelled');
      return false;
    }
    return new Promise((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: 'ignore' });
      const timer = setTimeout(() => {
        log.error({ timeoutMs }, 'pre_promote script did not finish in time: killed, promotion cancelled');
        killGroup(child);
      }, timeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        log.error({ err: errorMessage(e) }, 'pre_promote script could not be started: promotion cancelled');
        resolve(false);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        log.info({ code, signal }, `pre_promote script \`${cmd}\` exited with ${code ?? signal}`);
        resolve(code === 0);
      });
    });
  }
}
