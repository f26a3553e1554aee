/**
 * Process identity checks. PIDs wrap quickly (pid_max may be 32768), so a saved PID is signalled only
 * after checking that the process behind it still has the start time recorded when we spawned it.
 */
import { readFileSync } from 'node:fs';

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or null if no such process. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

/** True if `pid` is alive, not a zombie, and started when `startTime` says. */
export function isSameProcess(pid: number, startTime: string): boolean {
  if (!(pid > 0)) return false;
  if (processStartTime(pid) !== startTime) return false;
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

/** Wait until `pid` is gone (or a zombie); true if it exited within `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (processStartTime(pid) === null || isZombie(pid)) return true;
    if (performance.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
