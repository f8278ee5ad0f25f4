// Worker-thread side of the build: runs one LaneJob per message and posts progress and the result back.
import { parentPort } from 'node:worker_threads';
import { runLane, type LaneJob } from './node-job.ts';
import type { ProgressEvent } from '../progress.ts';
import { fsError, serializeError } from '../errors.ts';

parentPort!.on('message', async (job: LaneJob) => {
  try {
    const result = await runLane(job, (e: ProgressEvent) => parentPort!.postMessage({ type: 'progress', event: e }));
    parentPort!.postMessage({ type: 'done', result });
  } catch (err) {
    // fsError here, where the fs error still has its path; the pool rebuilds the error with its class.
    parentPort!.postMessage({ type: 'error', error: serializeError(fsError(err)) });
  }
});
