/**
 * Process identity checks. PIDs wrap quickly (pid_max may be 32768), so a saved PID is signalled only
 * after checking that the process behind it still has the start time recorded when we spawned it.
 */
import { readFileSync } from 'node:fs';

interface Stat {
  /** Field 3: R, S, D, T (stopped), t, Z (zombie), X … */
  state: string;
  /** Field 22: start time in clock ticks since boot — with the PID, a process's identity. */
  startTime: string;
}

function readStat(pid: number): Stat | null {
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [state, startTime] = [rest[0], rest[19]];
    return state && startTime ? { state, startTime } : null;
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or null if no such process. */
export function processStartTime(pid: number): string | null {
  return readStat(pid)?.startTime ?? null;
}

/** The one-letter state of /proc/<pid>/stat (`T` = stopped, `Z` = zombie), or null if no such process. */
export function processState(pid: number): string | null {
  return readStat(pid)?.state ?? null;
}

/** True if `pid` is alive, not a zombie, and started when `startTime` says. */
export function isSameProcess(pid: number, startTime: string): boolean {
  const s = readStat(pid);
  return s !== null && s.startTime === startTime && s.state !== 'Z' && s.state !== 'X';
}

/**
 * Send `signal` only if `pid` is still the process that started at `startTime`.
 * Returns false (and sends nothing) when it is gone or the PID now belongs to another process.
 */
export function signalIfSame(pid: number, startTime: string, signal: NodeJS.Signals): boolean {
  if (!isSameProcess(pid, startTime)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false; // it exited between the check and the signal
  }
}

/**
 * Wait until `pid` is gone (or a zombie); true if it exited within `timeoutMs`. With `startTime`, a PID
 * that now belongs to another process also counts as exited.
 */
export async function waitForExit(pid: number, timeoutMs: number, startTime?: string): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const s = readStat(pid);
    if (s === null || s.state === 'Z' || s.state === 'X' || (startTime !== undefined && s.startTime !== startTime)) return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Stop a process we started: SIGTERM (after SIGCONT, so a stopped process can act on it), then SIGKILL
 * if it is still there after `graceMs`. Resolves true once it is gone, false if it outlived the SIGKILL
 * wait too (it can only be stuck in the kernel then). Does nothing to a PID that is no longer ours.
 */
export async function stopProcess(pid: number, startTime: string, opts: { graceMs?: number; signal?: NodeJS.Signals } = {}): Promise<boolean> {
  if (!isSameProcess(pid, startTime)) return true;
  signalIfSame(pid, startTime, 'SIGCONT');
  signalIfSame(pid, startTime, opts.signal ?? 'SIGTERM');
  if (await waitForExit(pid, opts.graceMs ?? 10_000, startTime)) return true;
  signalIfSame(pid, startTime, 'SIGKILL');
  return waitForExit(pid, 5_000, startTime);
}

/**
 * Wait until a process we just sent SIGSTOP to is really stopped: the signal reaches a multi-threaded
 * process asynchronously, and a test that freezes a server must not race its last answers.
 */
export async function waitForStopped(pid: number, startTime: string, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (!isSameProcess(pid, startTime)) return false;
    if (processState(pid) === 'T') return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
}
