/**
 * Has a stopped data dir diverged from the leader? Pure, from pg_controldata, the leader's current
 * timeline and its timeline history file (Patroni rewind.py `_check_timeline_and_lsn`).
 */
import type { ControlData } from './controldata.js';
import { parseLsn } from './lsn.js';

export interface LocalPosition {
  inRecovery: boolean;
  timeline: number;
  lsn: number;
}

/**
 * Patroni rewind.py `_get_local_timeline_lsn_from_controldata`: a stopped replica counts from its
 * minimum recovery point, a cleanly stopped primary from its shutdown checkpoint; null when it crashed.
 */
export function localPosition(cd: ControlData): LocalPosition | null {
  let state = cd.state;
  if (state === 'shut down in recovery' || state === 'in archive recovery') {
    if (cd.minRecoveryLsn && cd.minRecoveryTimeline) return { inRecovery: true, timeline: cd.minRecoveryTimeline, lsn: cd.minRecoveryLsn };
    state = 'shut down'; // no minimum recovery point: it was a primary when it stopped
  }
  if (state === 'shut down' && cd.timeline && cd.checkpointLsn !== null) return { inRecovery: false, timeline: cd.timeline, lsn: cd.checkpointLsn };
  return null;
}

/**
 * `checkpointEnd`: where our shutdown checkpoint record ends — a former primary is in sync only when
 * the leader's switch point is exactly there (it wrote nothing the leader did not get). A data dir
 * that did not stop cleanly has no trustworthy position: it needs a rewind whenever its timeline
 * differs from the leader's (conservative: pg_rewind of an in-sync data dir is cheap).
 */
export function needsRewind(cd: ControlData, sourceTl: number, historyFile: string, checkpointEnd: number | null = null): boolean {
  const pos = localPosition(cd);
  if (!pos) return (cd.timeline ?? 0) !== sourceTl;
  if (pos.timeline > sourceTl) return true;
  if (pos.timeline === sourceTl) return false;
  for (const [parent, switchpoint] of parseHistoryFile(historyFile)) {
    if (parent === pos.timeline) {
      if (pos.inRecovery) return pos.lsn > switchpoint;
      if (pos.lsn >= switchpoint) return true;
      return switchpoint !== checkpointEnd;
    }
    // The leader's history skips our timeline: we are on a branch it never was on.
    if (parent > pos.timeline) return true;
  }
  return true;
}

/**
 * The end of the record at `lsn` from `pg_waldump -s lsn -n 2` on a stopped cluster: one record is
 * printed, then reading the next fails with "error in WAL record at <lsn>: invalid record length at <end>".
 */
export function parseWaldumpEnd(stdout: string, stderr: string, lsn: number): number | null {
  const out = stdout.trim().split('\n').filter(Boolean);
  if (out.length !== 1) return null;
  const m = /error in WAL record at ([0-9A-Fa-f]+\/[0-9A-Fa-f]+): invalid record length at ([0-9A-Fa-f]+\/[0-9A-Fa-f]+)/.exec(stderr);
  if (!m || parseLsn(m[1]) !== lsn) return null;
  return parseLsn(m[2]);
}

/** A timeline history file: `parentTLI <tab> switchpoint <tab> reason` per line. */
export function parseHistoryFile(text: string): Array<[number, number, string]> {
  const out: Array<[number, number, string]> = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]+\/[0-9A-Fa-f]+)\s*(.*)$/.exec(line);
    if (m) out.push([Number(m[1]), parseLsn(m[2]!)!, m[3]!.trim()]);
  }
  return out;
}

/** `pg_wal/00000002.history` for timeline 2. */
export function historyFilePath(timeline: number): string {
  return `pg_wal/${timeline.toString(16).toUpperCase().padStart(8, '0')}.history`;
}
