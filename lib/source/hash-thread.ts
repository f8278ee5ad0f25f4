// sha256 on a thread of its own, so a download's hash runs on the other core while this thread reads the socket
// (on two cores the hash is the largest cost of a verified fetch). One hashing thread per process, started on
// first use and holding the process open only while a hash is open; bytes go to it in shared buffers (no copy) or
// as a file prefix it reads itself (a resumed download's bytes on disk).
// Invariants: each hash sees its bytes in the order given; a shared buffer is not read after its update() settles.
import { Worker } from 'node:worker_threads';

const CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, readSync, closeSync } = require('node:fs');
const open = new Map();
let scratch;
parentPort.on('message', (m) => {
  let s = open.get(m.id);
  if (!s) open.set(m.id, (s = { h: createHash('sha256'), err: undefined }));
  if (m.t === 'drop') return void open.delete(m.id);
  try {
    if (s.err) throw s.err;
    if (m.t === 'bytes') s.h.update(new Uint8Array(m.buf, 0, m.len));
    else if (m.t === 'file') {
      scratch ??= Buffer.allocUnsafe(2 << 20);
      const fd = openSync(m.path, 'r');
      try {
        for (let at = 0; at < m.len; ) {
          const n = readSync(fd, scratch, 0, Math.min(scratch.length, m.len - at), at);
          if (n <= 0) throw new Error(m.path + ': shorter than ' + m.len + ' bytes');
          s.h.update(scratch.subarray(0, n));
          at += n;
        }
      } finally {
        closeSync(fd);
      }
    } else if (m.t === 'digest') {
      open.delete(m.id);
      return void parentPort.postMessage({ id: m.id, seq: m.seq, hex: s.h.digest('hex') });
    }
    parentPort.postMessage({ id: m.id, seq: m.seq });
  } catch (e) {
    s.err = e;
    if (m.t === 'digest') open.delete(m.id);
    parentPort.postMessage({ id: m.id, seq: m.seq, error: String((e && e.message) || e) });
  }
});
`;

type Reply = { id: number; seq: number; hex?: string; error?: string };
let worker: Worker | undefined;
let openHashes = 0;
let nextId = 0;
const waiting = new Map<string, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();

function thread(): Worker {
  if (worker) return worker;
  // Its garbage is a few message objects: a small young generation keeps the thread's heap small.
  const w = new Worker(CODE, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 2 } });
  w.on('message', (r: Reply) => {
    const key = `${r.id}:${r.seq}`;
    const p = waiting.get(key);
    waiting.delete(key);
    if (!p) return;
    if (r.error !== undefined) p.reject(new Error(r.error));
    else p.resolve(r);
  });
  const lost = (err: Error): void => {
    if (worker === w) worker = undefined;
    for (const [k, p] of waiting) {
      waiting.delete(k);
      p.reject(err);
    }
  };
  w.on('error', lost);
  w.on('exit', (code) => lost(new Error(`the hashing thread exited (${code})`)));
  w.unref();
  return (worker = w);
}

/** One sha256 computed on the hashing thread. */
export class ThreadHash {
  private readonly id = nextId++;
  private seq = 0;
  private closed = false;
  private readonly worker: Worker;
  constructor() {
    this.worker = thread();
    if (openHashes++ === 0) this.worker.ref();
  }
  /** Hash the first `len` bytes of `buf` (shared: not copied); resolves when `buf` may be reused. */
  update(buf: SharedArrayBuffer, len: number): Promise<void> {
    return this.send({ t: 'bytes', buf, len }).then(() => undefined);
  }
  /** Hash the first `len` bytes of the file at `path`. */
  file(path: string, len: number): Promise<void> {
    return this.send({ t: 'file', path, len }).then(() => undefined);
  }
  /** The hex digest of everything given; the hash is closed. */
  async digest(): Promise<string> {
    try {
      return (await this.send({ t: 'digest' })).hex!;
    } finally {
      this.close(); // after the answer: an unref'd thread would let the process exit while it is awaited
    }
  }
  /** Forget it (a restart, a failure). */
  drop(): void {
    if (this.closed) return;
    if (worker === this.worker) this.worker.postMessage({ t: 'drop', id: this.id });
    this.close();
  }
  private send(m: Record<string, unknown>): Promise<Reply> {
    if (this.closed) return Promise.reject(new Error('the hash is closed'));
    if (worker !== this.worker) return Promise.reject(new Error('the hashing thread was lost'));
    const seq = this.seq++;
    const p = new Promise<Reply>((resolve, reject) => waiting.set(`${this.id}:${seq}`, { resolve, reject }));
    this.worker.postMessage({ ...m, id: this.id, seq });
    return p;
  }
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    if (--openHashes === 0) this.worker.unref();
  }
}
