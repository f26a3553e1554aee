/**
 * Questions on the terminal, as click asks them in patronictl: `Text [default]: ` for a value and
 * `Text [y/N]: ` for a confirmation. Answers are lines of stdin, so they can be piped; stdin ending
 * before an answer aborts (exit 1), as click's Abort does.
 */
import { createInterface, type Interface } from 'node:readline';
import { failed, parseYesNo } from './args.js';

export interface Terminal {
  /** A line of text; empty input gives `def` when there is one, else the question is asked again. */
  prompt(text: string, def?: string): Promise<string>;
  /** y/yes or n/no; empty input gives `def`. */
  confirm(text: string, def?: boolean): Promise<boolean>;
  /** All of stdin (`--apply -`). */
  readAll(): Promise<string>;
  close(): void;
}

/** A source of answer lines: null at the end of input. */
export interface LineSource {
  next(): Promise<string | null>;
  close(): void;
}

/** Bounded retries of an invalid answer, so a script feeding garbage cannot loop forever. */
const MAX_ATTEMPTS = 10;

export function createTerminal(write: (s: string) => void, lines: LineSource, readAll: () => Promise<string>): Terminal {
  const ask = async (question: string): Promise<string> => {
    write(question);
    const line = await lines.next();
    if (line === null) {
      write('\n');
      throw failed('Aborted!');
    }
    return line;
  };
  return {
    async prompt(text, def) {
      for (let i = 0; i < MAX_ATTEMPTS; i++) {
        const answer = (await ask(def !== undefined ? `${text} [${def}]: ` : `${text}: `)).trim();
        if (answer !== '') return answer;
        if (def !== undefined) return def;
      }
      throw failed('Aborted!');
    },
    async confirm(text, def = false) {
      for (let i = 0; i < MAX_ATTEMPTS; i++) {
        const yes = parseYesNo(await ask(`${text} [${def ? 'Y/n' : 'y/N'}]: `), def);
        if (yes !== null) return yes;
        write('Error: invalid input\n');
      }
      throw failed('Aborted!');
    },
    readAll,
    close: () => lines.close(),
  };
}

/** Lines of process.stdin, opened on the first question only (non-interactive verbs never touch stdin). */
export function stdinLines(): LineSource {
  let rl: Interface | null = null;
  let it: AsyncIterator<string> | null = null;
  return {
    async next() {
      if (!it) {
        rl = createInterface({ input: process.stdin, terminal: false });
        it = rl[Symbol.asyncIterator]();
      }
      const r = await it.next();
      return r.done ? null : r.value;
    },
    close() {
      if (!rl) return;
      rl.close();
      process.stdin.pause();
    },
  };
}

export function readStdin(): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    process.stdin.on('data', (d: Buffer) => chunks.push(d));
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    process.stdin.on('error', reject);
  });
}

/** Answers given in advance, for tests. */
export function scriptedLines(answers: readonly string[]): LineSource {
  const queue = [...answers];
  return { next: async () => queue.shift() ?? null, close: () => undefined };
}
