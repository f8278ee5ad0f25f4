// Read a file that another process is still writing front to back — a decompressor's output — as if it were
// complete: a read blocks until the file has grown past the bytes asked for. Lets a build read the base image while
// `xz -dc` is still writing it. Works across worker threads: the writer's side publishes its state in a
// SharedArrayBuffer (GROWING → DONE or FAILED), readers poll the file size and sleep with Atomics.wait.
import { fstatSync } from 'node:fs';
import { FileIO, type BlockIO } from './io.ts';
import { PiImageError, SourceError } from '../errors.ts';

export const GROWING = 0;
export const DONE = 1;
export const FAILED = 2;

/** What a reader needs: the file, its final size, and the writer's shared state. Plain data: passes to workers. */
export interface GrowingFile {
  path: string;
  /** Where the file is renamed to once complete (before it is settled DONE). */
  finalPath: string;
  size: number;
  state: SharedArrayBuffer;
}

/** A new shared state (GROWING) for a file of final size `size` being written at `path`, then renamed to `finalPath`. */
export function growingFile(path: string, finalPath: string, size: number): GrowingFile {
  return { path, finalPath, size, state: new SharedArrayBuffer(8) };
}

/** The writer's side: say the file is complete (DONE) or will never be (FAILED); wakes every reader. */
export function settleGrowing(file: GrowingFile, outcome: typeof DONE | typeof FAILED): void {
  const flags = new Int32Array(file.state);
  Atomics.store(flags, 0, outcome);
  Atomics.notify(flags, 1);
}

function writerFailed(path: string): PiImageError {
  return new SourceError(`${path}: the base image could not be decompressed; nothing was built from it`);
}

export class GrowingFileIO implements BlockIO {
  readonly readOnly = true;
  readonly base = 0;
  private readonly file: FileIO;
  private readonly flags: Int32Array;
  private available = 0;

  private constructor(private readonly src: GrowingFile, file: FileIO) {
    this.file = file;
    this.flags = new Int32Array(src.state);
  }

  static open(src: GrowingFile): GrowingFileIO {
    const flags = new Int32Array(src.state);
    for (;;) {
      try {
        return new GrowingFileIO(src, FileIO.open(src.path, { size: src.size }));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      // Gone from its temporary name: it was renamed into place (DONE follows at once) or it failed.
      Atomics.wait(flags, 1, 0, 10);
      const state = Atomics.load(flags, 0);
      if (state === DONE) return new GrowingFileIO(src, FileIO.open(src.finalPath, { size: src.size }));
      if (state === FAILED) throw writerFailed(src.path);
    }
  }

  get size(): number {
    return this.src.size;
  }

  get name(): string {
    return this.file.name;
  }

  /** Block until [offset, offset+length) has been written (or the writer is done), or throw if it failed. */
  private waitFor(end: number): void {
    while (this.available < end) {
      const state = Atomics.load(this.flags, 0);
      if (state === FAILED) throw writerFailed(this.name);
      this.available = fstatSync(this.file.fd).size;
      if (this.available >= end || state === DONE) return;
      Atomics.wait(this.flags, 1, 0, 10);
    }
  }

  read(offset: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    this.readInto(buf, offset);
    return buf;
  }

  readInto(buf: Buffer, offset: number): void {
    this.waitFor(Math.min(this.size, offset + buf.length));
    this.file.readInto(buf, offset);
  }

  write(): void {
    throw new PiImageError('INPUT', `${this.name}: read-only`);
  }

  sync(): void {}

  close(): void {
    this.file.close();
  }
}
