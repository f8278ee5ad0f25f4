// Runs the build's lanes, each in its own worker thread: the copy and checksum work is CPU and syscall bound, so two
// lanes on two cores take about the time of one, and this thread stays free for the decompression it may overlap.
import { Worker } from 'node:worker_threads';
import type { LaneJob, LaneResult } from './node-job.ts';
import type { ProgressEvent } from '../progress.ts';
import { BuildError, ERROR_CLASSES, reviveError, serializeError, type SerializedError } from '../errors.ts';
import { GptDiskError } from '../image/gpt.ts';
import { NoSpaceError } from '../image/fat/errors.ts';
import { DownloadError } from '../source/download.ts';


// From the compiled tree the worker is plain JavaScript; from the sources it needs tsx, registered by a small
// JavaScript entry in the worker's own thread.
const compiled = import.meta.url.endsWith('.js');
const bootUrl = compiled ? new URL('./worker.js', import.meta.url) : new URL('./worker-boot.mjs', import.meta.url);
const entry = new URL('./worker.ts', import.meta.url).href;

const LANE_YOUNG_MB = 3;
// A lane's live heap is ~9 MB (a heap snapshot of a warm build's lane); left to V8's default limit, the garbage of
// its chunk views and events grew its old generation to ~28 MB before a full collection, per lane. A limit of 24 MB
// makes V8 collect early: a warm 4-node build's process went from 154-167 MB peak RSS to 134-135 MB.
const LANE_OLD_MB = 24;

function newLaneWorker(): Worker {
  // A lane's garbage is short-lived chunk views and events: a young generation of a few MB (instead of V8's
  // default of up to 48 MB per thread) and a low old-generation limit keep each lane's heap small, which bounds
  // the build's memory per lane.
  return new Worker(bootUrl, { workerData: { entry }, resourceLimits: { maxYoungGenerationSizeMb: LANE_YOUNG_MB, maxOldGenerationSizeMb: LANE_OLD_MB } });
}

/**
 * Lane workers started before their jobs are known, so that their start and module loading overlap the caller's
 * own work (the seeds). Each runs one lane of runLanes; the caller terminates them if it never gets there.
 */
export function startLaneWorkers(n: number): Worker[] {
  return Array.from({ length: n }, newLaneWorker);
}

function runInWorker(job: LaneJob, onProgress: (e: ProgressEvent) => void, workers: Worker[], started?: Worker): Promise<LaneResult> {
  const label = job.nodes.map((n) => n.node).join(', ');
  return new Promise((resolve, reject) => {
    const worker = started ?? newLaneWorker();
    workers.push(worker);
    let settled = false;
    const finish = (fn: () => void) => {
      if (!settled) {
        settled = true;
        fn();
        void worker.terminate();
      }
    };
    worker.on('message', (m: { type: string; event?: ProgressEvent; result?: LaneResult; error?: SerializedError }) => {
      if (m.type === 'progress' && m.event) onProgress(m.event);
      else if (m.type === 'done') finish(() => resolve(m.result!));
      else if (m.type === 'error') {
        const err = reviveError(m.error!, ERROR_CLASSES, `${label}: `);
        finish(() => reject(err));
      }
    });
    // An exception the lane did not catch arrives structured-cloned (own fields kept, class lost): rebuilt too.
    worker.on('error', (err) => finish(() => reject(reviveError(serializeError(err), ERROR_CLASSES, `${label}: `))));
    worker.on('exit', (code) => finish(() => reject(new BuildError(`${label}: build worker exited with code ${code}`))));
    worker.postMessage(job);
  });
}

/**
 * Run every lane at once, each in a worker (the `started` ones first: startLaneWorkers); results in the order of
 * `lanes`. The first failure rejects, once every worker is terminated.
 */
export async function runLanes(lanes: LaneJob[], onProgress: (e: ProgressEvent) => void, started: Worker[] = []): Promise<LaneResult[]> {
  const workers: Worker[] = [];
  for (const idle of started.slice(lanes.length)) void idle.terminate();
  try {
    return await Promise.all(lanes.map((lane, i) => runInWorker(lane, onProgress, workers, started[i])));
  } catch (err) {
    await Promise.all([...new Set([...workers, ...started])].map((w) => w.terminate()));
    throw err;
  }
}
