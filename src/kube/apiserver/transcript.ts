/**
 * An optional record of every request, response and watch event as JSON lines, so tests can assert
 * on what really crossed the wire (resourceVersions strictly increase per write, watch events reached
 * each client, no BOOKMARK without allowWatchBookmarks). Kept in memory and, when a file is given,
 * appended to it line by line (so it survives a crash of the test).
 */
import { appendFileSync, writeFileSync } from 'node:fs';

export type TranscriptRecord =
  | { kind: 'request'; t: string; id: number; method: string; url: string; contentType?: string; auth: 'bearer' | 'none' | 'other'; userAgent?: string; body?: unknown }
  | { kind: 'response'; t: string; id: number; status: number; watch: boolean; resourceVersion?: string; body?: unknown }
  | { kind: 'watch-event'; t: string; id: number; type: string; name?: string; namespace?: string; resourceVersion?: string; code?: number }
  | { kind: 'watch-closed'; t: string; id: number; events: number };

type Omit2<T> = T extends unknown ? Omit<T, 't'> : never;

export class Transcript {
  readonly records: TranscriptRecord[] = [];

  constructor(
    private readonly file?: string,
    private readonly maxBodyChars = 16_384,
  ) {
    if (file) writeFileSync(file, '');
  }

  /** A body as recorded: the parsed JSON when small enough, otherwise its first characters. */
  body(raw: string): unknown {
    if (raw === '') return undefined;
    if (raw.length > this.maxBodyChars) return `${raw.slice(0, this.maxBodyChars)}…`;
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }

  add(r: Omit2<TranscriptRecord>): void {
    const rec = { t: new Date().toISOString(), ...r } as TranscriptRecord;
    this.records.push(rec);
    if (this.file) appendFileSync(this.file, `${JSON.stringify(rec)}\n`);
  }
}
