// A one-shot result passed from the build's main thread to its lanes (worker threads): a word in a SharedArrayBuffer
// that every lane's job carries (structured clone shares it, never copies it), set once with Atomics and waited on.
// Used for the kernel's copies of the SSD images from a complete base, which the main thread starts in one helper
// process as soon as the base is known: the lanes write their SD images meanwhile and wait only when they reach
// their SSD images. One helper for all images keeps the copies one after the other (two at once contend for the
// page cache: four cp of the base two at a time took 11.3 s of system time against 7.1 s in a row, by hand).
// Invariants: the main thread always settles the signal (the copy ended, failed or was stopped) before it lets the
// build end; a lane blocks only on a signal whose copy has started.

const PENDING = 0;
const YES = 1;
const NO = 2;

/** A new signal, pending. */
export function newSignal(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/** Settle it (once): true when the work it stands for was done. */
export function settleSignal(signal: SharedArrayBuffer, ok: boolean): void {
  const word = new Int32Array(signal);
  Atomics.compareExchange(word, 0, PENDING, ok ? YES : NO);
  Atomics.notify(word, 0);
}

/** Block this thread until the signal is settled; its value. */
export function waitForSignal(signal: SharedArrayBuffer): boolean {
  const word = new Int32Array(signal);
  while (Atomics.load(word, 0) === PENDING) Atomics.wait(word, 0, PENDING);
  return Atomics.load(word, 0) === YES;
}
