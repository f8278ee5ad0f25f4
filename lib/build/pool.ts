// Runs node jobs N at a time in worker threads (the copy and checksum work is CPU and syscall bound, so two
// nodes on two cores take about the time of one). With jobs=1 it runs them inline, in this thread.
import { Worker } from 'node:worker_threads';
import { runNodeJob, type NodeJob } from './node-job.ts';
import type { ManifestNode } from './manifest.ts';
import type { ProgressEvent } from '../progress.ts';
import { PiImageError } from '../errors.ts';

// From the compiled tree the worker is plain JavaScript; from the sources it needs tsx, registered by a small
// JavaScript entry in the worker's own thread.
const compiled = import.meta.url.endsWith('.js');
const bootUrl = compiled ? new URL('./worker.js', import.meta.url) : new URL('./worker-boot.mjs', import.meta.url);
const entry = new URL('./worker.ts', import.meta.url).href;

function runInWorker(job: NodeJob, onProgress: (e: ProgressEvent) => void): Promise<ManifestNode> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(bootUrl, { workerData: { entry } });
    let settled = false;
    const finish = (fn: () => void) => {
      if (!settled) {
        settled = true;
        fn();
        void worker.terminate();
      }
    };
    worker.on('message', (m: { type: string; event?: ProgressEvent; result?: ManifestNode; error?: Record<string, string> }) => {
      if (m.type === 'progress' && m.event) onProgress(m.event);
      else if (m.type === 'done') finish(() => resolve(m.result!));
      else if (m.type === 'error') {
        const e = m.error!;
        const err = new PiImageError(e.code ?? 'BUILD', `${job.node}: ${e.message}`, e.hint);
        err.stack = e.stack;
        finish(() => reject(err));
      }
    });
    worker.on('error', (err) => finish(() => reject(err)));
    worker.on('exit', (code) => finish(() => reject(new Error(`${job.node}: build worker exited with code ${code}`))));
    worker.postMessage(job);
  });
}

/** Run all jobs, at most `jobs` at once; results in the order of `list`. The first failure rejects. */
export async function runJobs(list: NodeJob[], jobs: number, onProgress: (e: ProgressEvent) => void): Promise<ManifestNode[]> {
  const results: ManifestNode[] = new Array(list.length);
  if (jobs <= 1) {
    for (let i = 0; i < list.length; i++) results[i] = await runNodeJob(list[i], onProgress);
    return results;
  }
  let next = 0;
  const lane = async () => {
    while (next < list.length) {
      const i = next++;
      results[i] = await runInWorker(list[i], onProgress);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, list.length) }, lane));
  return results;
}
