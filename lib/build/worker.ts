// Worker-thread side of parallel builds: runs one NodeJob per message and posts progress and the result back.
import { parentPort } from 'node:worker_threads';
import { runNodeJob, type NodeJob } from './node-job.ts';

parentPort!.on('message', async (job: NodeJob) => {
  try {
    const result = await runNodeJob(job, (e) => parentPort!.postMessage({ type: 'progress', event: e }));
    parentPort!.postMessage({ type: 'done', result });
  } catch (err) {
    const e = err as Error & { code?: string; hint?: string };
    parentPort!.postMessage({ type: 'error', error: { name: e.name, message: e.message, code: e.code, hint: e.hint, stack: e.stack } });
  }
});
