// Worker-thread side of the build: runs one LaneJob per message and posts progress and the result back.
// Progress is posted at most every PROGRESS_MS per phase (its first and last events always): a checksum pass
// reports every MiB, and posting each cost a lane ~40 ms of structured cloning that no display shows.
import { parentPort } from 'node:worker_threads';
import { runLane, type LaneJob } from './node-job.ts';
import type { ProgressEvent } from '../progress.ts';
import { fsError, serializeError } from '../errors.ts';

const PROGRESS_MS = 100;

/** postMessage for progress events, thinned out within a phase. */
function progressPoster(): (e: ProgressEvent) => void {
  let phase = '';
  let last = 0;
  return (e) => {
    const now = performance.now();
    const final = e.total !== undefined && e.done >= e.total;
    if (e.phase === phase && !final && now - last < PROGRESS_MS) return;
    phase = e.phase;
    last = now;
    parentPort!.postMessage({ type: 'progress', event: e });
  };
}

parentPort!.on('message', async (job: LaneJob) => {
  try {
    const result = await runLane(job, progressPoster());
    parentPort!.postMessage({ type: 'done', result });
  } catch (err) {
    // fsError here, where the fs error still has its path; the pool rebuilds the error with its class.
    parentPort!.postMessage({ type: 'error', error: serializeError(fsError(err)) });
  }
});
