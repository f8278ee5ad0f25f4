// Check byte ranges of a file on several cores: worker threads each read their share of the ranges (largest first,
// to the least-loaded worker) and either sha256 them (hashRangesParallel) or compare them with the same ranges of
// another file (compareRangesParallel). Used by verify, where one core cannot keep up with the reads. With a
// `follow` watermark the workers trail a writer still filling the file: a read waits until the writer has passed
// it (see Watermark).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { reviveError, serializeError } from '../errors.ts';

export interface HashTask {
  start: number;
  length: number;
}

// Plain JS so it runs in a worker without the TypeScript loader. Posts {index, digest} (hash) or {index, equal}.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { path, other, tasks, algorithm, chunk, follow, head } = workerData;
const mark = follow ? new BigInt64Array(follow) : undefined;
// Wait until [a, b) is written: bytes past the head once the writer has passed b, the head once it is all done.
const ready = (a, b) => {
  if (!mark) return;
  for (;;) {
    const done = Atomics.load(mark, 1);
    if (done === -1n) throw new Error('aborted: the write failed');
    if (done === 1n) return;
    const w = Atomics.load(mark, 0);
    if (a >= head && BigInt(b) <= w) return;
    Atomics.wait(mark, 1, done, 20);
  }
};
const fd = openSync(path, 'r');
const fd2 = other ? openSync(other, 'r') : -1;
const buf = Buffer.allocUnsafe(chunk);
const buf2 = other ? Buffer.allocUnsafe(chunk) : undefined;
const full = (f, b, want, off, name) => {
  if (f === fd) ready(off, off + want);
  for (let n = 0; n < want; ) {
    const got = readSync(f, b, n, want - n, off + n);
    // Thrown as CorruptImageError's data (name, code, offset): the pool rebuilds it with its class (reviveError).
    if (got === 0) throw Object.assign(new Error(name + ': ends early (at byte offset ' + (off + n) + ')'), { name: 'CorruptImageError', code: 'CORRUPT', offset: off + n });
    n += got;
  }
};
let sinceReport = 0;
try {
  for (const t of tasks) {
    const h = other ? undefined : createHash(algorithm);
    let equal = true;
    for (let off = t.start; off < t.start + t.length; ) {
      const want = Math.min(chunk, t.start + t.length - off);
      full(fd, buf, want, off, path);
      if (h) h.update(buf.subarray(0, want));
      else if (equal) {
        full(fd2, buf2, want, off, other);
        equal = buf.subarray(0, want).equals(buf2.subarray(0, want));
      }
      off += want;
      sinceReport += want;
      if (sinceReport >= 32 << 20) { parentPort.postMessage({ progress: sinceReport }); sinceReport = 0; }
      if (!h && !equal) { sinceReport += t.start + t.length - off; break; }
    }
    parentPort.postMessage(h ? { index: t.index, digest: h.digest('hex') } : { index: t.index, equal });
  }
  parentPort.postMessage({ progress: sinceReport, done: true });
} finally { closeSync(fd); if (fd2 >= 0) closeSync(fd2); }
`;

interface Opts {
  algorithm?: string;
  /** A writer's Watermark to trail. */
  follow?: Watermark;
  workers?: number;
  chunk?: number;
  onBytes?: (n: number) => void;
}

async function runShares(path: string, other: string | undefined, tasks: HashTask[], opts: Opts): Promise<(string | boolean)[]> {
  const n = Math.max(1, Math.min(opts.workers ?? Math.min(availableParallelism(), 4), tasks.length));
  const shares: { load: number; tasks: (HashTask & { index: number })[] }[] = Array.from({ length: n }, () => ({ load: 0, tasks: [] }));
  const order = tasks.map((t, index) => ({ start: t.start, length: t.length, index })).sort((a, b) => b.length - a.length);
  for (const t of order) {
    const s = shares.reduce((a, b) => (b.load < a.load ? b : a));
    s.tasks.push(t);
    s.load += t.length;
  }
  // In file order; behind a writer, what touches its head (written last) goes last, so it does not hold up the rest.
  const late = (t: HashTask) => (opts.follow && t.start < opts.follow.head ? 1 : 0);
  for (const s of shares) s.tasks.sort((a, b) => late(a) - late(b) || a.start - b.start);
  const out: (string | boolean)[] = new Array(tasks.length);
  await Promise.all(
    shares
      .filter((s) => s.tasks.length > 0)
      .map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(WORKER, {
              eval: true,
              workerData: {
                path, other, tasks: s.tasks, algorithm: opts.algorithm ?? 'sha256', chunk: opts.chunk ?? 4 << 20,
                follow: opts.follow?.state, head: opts.follow?.head ?? 0,
              },
              // Nothing here lives long: a small young generation keeps each worker's heap to a few MB.
              resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 },
            });
            w.on('message', (m: { index?: number; digest?: string; equal?: boolean; progress?: number }) => {
              if (m.progress) opts.onBytes?.(m.progress);
              if (m.index !== undefined) out[m.index] = m.digest ?? m.equal!;
            });
            w.on('error', (e) => reject(reviveError(serializeError(e))));
            w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`hash worker exited with code ${code}`))));
          }),
      ),
  );
  return out;
}

/**
 * How far a writer filling a file in ascending order has got, shared with the workers: every byte from `head` up to
 * `passed` that will be written is written; the first `head` bytes (written last) only once `finish` is called.
 */
export class Watermark {
  readonly state = new SharedArrayBuffer(16);
  private readonly mark = new BigInt64Array(this.state);
  constructor(readonly head: number) {}
  passed(offset: number): void {
    Atomics.store(this.mark, 0, BigInt(offset));
    Atomics.notify(this.mark, 1);
  }
  /** Everything is written (1), or never will be (-1: the workers stop with an error). */
  finish(outcome: 1 | -1): void {
    Atomics.store(this.mark, 1, BigInt(outcome));
    Atomics.notify(this.mark, 1);
  }
}

/** Digests of `tasks` (in order), hashed by up to `workers` threads; `onBytes` gets bytes hashed as they go. */
export async function hashRangesParallel(path: string, tasks: HashTask[], opts: Opts = {}): Promise<string[]> {
  return (await runShares(path, undefined, tasks, opts)) as string[];
}

/** For each of `tasks` (in order): are those bytes of `path` equal to the same bytes of `other`? */
export async function compareRangesParallel(path: string, other: string, tasks: HashTask[], opts: Opts = {}): Promise<boolean[]> {
  return (await runShares(path, other, tasks, opts)) as boolean[];
}
