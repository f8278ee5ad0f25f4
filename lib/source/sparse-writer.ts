// Writes a stream of raw image bytes into a file sparsely: all-zero 4 KiB blocks are skipped by seeking (they stay
// holes), and the file is ftruncated to its full size at the end. It keeps no hash of the bytes: the decoders feeding
// it check their own (gzip and zip CRC32), and the source file was verified by its sha256 before decoding.
import { openSync, closeSync, writeSync, ftruncateSync, fsyncSync } from 'node:fs';
import { forEachDataRun } from '../image/sparse.ts';

const BLOCK = 4096;
const STAGE = 1 << 20; // whole blocks are tested once a 1 MiB stage is full

export class SparseWriter {
  private readonly fd: number;
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

  /** Flush the tail, set the full size (trailing zeros become a hole), fsync. */
  finish(): { size: number; dataBytes: number } {
    this.flush();
    ftruncateSync(this.fd, this.size);
    fsyncSync(this.fd);
    closeSync(this.fd);
    return { size: this.size, dataBytes: this.dataBytes };
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
