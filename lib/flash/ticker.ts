// Progress for the flash passes (write, verify): one event at most every 100 ms, and a turn of the event loop with
// each, so spinners redraw and signals are seen while a pass runs synchronous reads and writes.
import type { OnProgress } from '../progress.ts';

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A reporter of bytes done out of `total` for `phase`; `force` reports even within 100 ms of the last event. */
export function ticker(onProgress: OnProgress | undefined, phase: string, total: number, detail?: string) {
  let last = 0;
  let lastDone = -1;
  return async (done: number, force = false): Promise<void> => {
    const now = Date.now();
    if ((!force && now - last < 100) || done === lastDone) return;
    last = now;
    lastDone = done;
    onProgress?.({ phase, done, total, unit: 'bytes', detail });
    await yieldNow();
  };
}
