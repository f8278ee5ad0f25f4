// Whether a process still runs. Temporary outputs (build staging, netboot trees) are named after the pid that
// writes them; only those of a process that is gone are leftovers to remove.

/** True while `pid` runs (EPERM: it runs under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
