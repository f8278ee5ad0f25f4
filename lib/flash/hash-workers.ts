// Hash byte ranges of a file on several cores: worker threads each read and sha256 their share of the ranges
// (largest first, to the least-loaded worker). Used by verify, where hashing — not I/O — is the bottleneck.
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';

export interface HashTask {
  start: number;
  length: number;
}

// Plain JS so it runs in a worker without the TypeScript loader.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const { path, tasks, algorithm, chunk } = workerData;
const fd = openSync(path, 'r');
const buf = Buffer.allocUnsafe(chunk);
let sinceReport = 0;
try {
  for (const t of tasks) {
    const h = createHash(algorithm);
    for (let off = t.start; off < t.start + t.length; ) {
      const want = Math.min(chunk, t.start + t.length - off);
      const n = readSync(fd, buf, 0, want, off);
      if (n === 0) throw new Error(path + ': ends early at byte ' + off);
      h.update(buf.subarray(0, n));
      off += n;
      sinceReport += n;
      if (sinceReport >= 32 << 20) { parentPort.postMessage({ progress: sinceReport }); sinceReport = 0; }
    }
    parentPort.postMessage({ index: t.index, digest: h.digest('hex') });
  }
  parentPort.postMessage({ progress: sinceReport, done: true });
} finally { closeSync(fd); }
`;

/** Digests of `tasks` (in order), hashed by up to `workers` threads; `onBytes` gets bytes hashed as they go. */
export async function hashRangesParallel(
  path: string,
  tasks: HashTask[],
  opts: { algorithm?: string; workers?: number; chunk?: number; onBytes?: (n: number) => void } = {},
): Promise<string[]> {
  const n = Math.max(1, Math.min(opts.workers ?? Math.min(availableParallelism(), 4), tasks.length));
  const shares: { load: number; tasks: (HashTask & { index: number })[] }[] = Array.from({ length: n }, () => ({ load: 0, tasks: [] }));
  const order = tasks.map((t, index) => ({ ...t, index })).sort((a, b) => b.length - a.length);
  for (const t of order) {
    const s = shares.reduce((a, b) => (b.load < a.load ? b : a));
    s.tasks.push(t);
    s.load += t.length;
  }
  for (const s of shares) s.tasks.sort((a, b) => a.start - b.start);
  const digests: string[] = new Array(tasks.length);
  await Promise.all(
    shares
      .filter((s) => s.tasks.length > 0)
      .map(
        (s) =>
          new Promise<void>((resolve, reject) => {
            const w = new Worker(WORKER, {
              eval: true,
              workerData: { path, tasks: s.tasks, algorithm: opts.algorithm ?? 'sha256', chunk: opts.chunk ?? 4 << 20 },
            });
            w.on('message', (m: { index?: number; digest?: string; progress?: number; done?: boolean }) => {
              if (m.progress) opts.onBytes?.(m.progress);
              if (m.index !== undefined && m.digest) digests[m.index] = m.digest;
            });
            w.on('error', reject);
            w.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`hash worker exited with code ${code}`))));
          }),
      ),
  );
  return digests;
}
