// One lane at a time through a section, across the build's worker threads: a lock word in a SharedArrayBuffer that
// every lane's job carries (structured clone shares it, never copies it), taken with Atomics.
// Used for the kernel's copies of the SSD images from a complete base: two lanes' copies at once contend for the
// page cache (four cp of the base two at a time took 11.3 s of system time against 7.1 s one after the other, by
// hand), while either lane's other work (SD images, checksums) runs fine beside the other's copy.
// Invariants: the holder always releases (finally), so a lane that throws frees the others; a lane thread that is
// terminated is only ever terminated with the whole build, when nobody waits any more.

/** A new lock, free. */
export function newTurn(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/** Run `fn` holding the lock (blocking this thread while another holds it); without a lock, just run it. */
export function inTurn<T>(turn: SharedArrayBuffer | undefined, fn: () => T): T {
  if (!turn) return fn();
  const word = new Int32Array(turn);
  while (Atomics.compareExchange(word, 0, 0, 1) !== 0) Atomics.wait(word, 0, 1);
  try {
    return fn();
  } finally {
    Atomics.store(word, 0, 0);
    Atomics.notify(word, 0, 1);
  }
}
