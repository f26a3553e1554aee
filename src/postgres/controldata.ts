import type { ControlState } from './types.js';
import { parseLsn } from './lsn.js';

export interface ControlData {
  state: ControlState | null;
  sysid: string | null;
  timeline: number | null;
  checkpointLsn: number | null;
  redoLsn: number | null;
  minRecoveryLsn: number | null;
  minRecoveryTimeline: number | null;
}

/** Parse `pg_controldata` output (LC_ALL=C). */
export function parseControlData(text: string): ControlData {
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) kv.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const int = (k: string) => {
    const v = kv.get(k);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : null;
  };
  return {
    state: (kv.get('Database cluster state') as ControlState | undefined) ?? null,
    sysid: kv.get('Database system identifier') ?? null,
    timeline: int("Latest checkpoint's TimeLineID"),
    checkpointLsn: parseLsn(kv.get('Latest checkpoint location')),
    redoLsn: parseLsn(kv.get("Latest checkpoint's REDO location")),
    minRecoveryLsn: parseLsn(kv.get('Minimum recovery ending location')),
    minRecoveryTimeline: int("Min recovery ending loc's timeline"),
  };
}
