// Writes a stream of raw image bytes into a file sparsely: all-zero 4 KiB blocks are skipped by seeking (they stay
// holes), the file is ftruncated to its full size at the end, and a sha256 of every byte (zeros included) is kept.
import { createHash } from 'node:crypto';
import { openSync, closeSync, writeSync, ftruncateSync, fsyncSync } from 'node:fs';
import { forEachDataRun } from '../image/sparse.ts';

const BLOCK = 4096;
const STAGE = 1 << 20; // whole blocks are tested once a 1 MiB stage is full

export class SparseWriter {
  private readonly fd: number;
  private readonly hash = createHash('sha256');
  private readonly stage = Buffer.alloc(STAGE);
  private fill = 0;
  /** Bytes received so far (the image size once finished). */
  size = 0;
  /** Bytes actually written (non-zero blocks). */
  dataBytes = 0;
  private base = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'w', 0o644);
  }

  write(chunk: Buffer): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(chunk.length - off, STAGE - this.fill);
      chunk.copy(this.stage, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === STAGE) this.flush();
    }
  }

  private flush(): void {
    const buf = this.stage.subarray(0, this.fill);
    forEachDataRun(buf, BLOCK, (start, end) => {
      let w = 0;
      while (w < end - start) w += writeSync(this.fd, buf, start + w, end - start - w, this.base + start + w);
      this.dataBytes += end - start;
    });
    this.base += this.fill;
    this.fill = 0;
  }

  /** Flush the tail, set the full size (trailing zeros become a hole), fsync; returns the sha256 of all bytes. */
  finish(): { sha256: string; size: number; dataBytes: number } {
    this.flush();
    ftruncateSync(this.fd, this.size);
    fsyncSync(this.fd);
    closeSync(this.fd);
    return { sha256: this.hash.digest('hex'), size: this.size, dataBytes: this.dataBytes };
  }

  /** Close without finishing (on error); the caller deletes the file. */
  abort(): void {
    try {
      closeSync(this.fd);
    } catch {
      /* already closed */
    }
  }
}
