// Test helper: reads a resolved image through openImage(ref) in a worker thread, as the build's lanes do (a read of
// a growing image blocks its thread until xz has written the bytes), and posts the sha256 of what it read, or the
// error. Started through lib/assemble/worker-boot.mjs (tsx in the worker): readInWorker(ref).
import { Worker, parentPort, workerData, isMainThread } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { openImage, type ImageRef } from '../../lib/source/image-handle.ts';

const boot = new URL('../../lib/assemble/worker-boot.mjs', import.meta.url);

/** The sha256 of the whole image `ref` names, read in 1 MiB blocks front to back in a worker thread. */
export function readInWorker(ref: ImageRef): Promise<string> {
  return new Promise((resolve, reject) => {
    const w = new Worker(boot, { workerData: { entry: import.meta.url, ref } });
    w.once('message', (m: { sha256?: string; error?: string }) => (m.error !== undefined ? reject(new Error(m.error)) : resolve(m.sha256!)));
    w.once('error', reject);
  });
}

if (!isMainThread && workerData?.ref) {
  try {
    const io = openImage(workerData.ref as ImageRef);
    const hash = createHash('sha256');
    const buf = Buffer.alloc(1 << 20);
    for (let at = 0; at < io.size; at += buf.length) {
      const b = buf.subarray(0, Math.min(buf.length, io.size - at));
      io.readInto(b, at);
      hash.update(b);
    }
    io.close();
    parentPort!.postMessage({ sha256: hash.digest('hex') });
  } catch (err) {
    parentPort!.postMessage({ error: (err as Error).message });
  }
}
