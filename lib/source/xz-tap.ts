// XzTap: decompresses an .xz download while it is still arriving, feeding `xz -dc` from the growing `.partial`
// file (see the class comment). Used by resolve.ts through download()'s DownloadTap.
import { closeSync, openSync, read, rmSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { join } from 'node:path';
import { isXzStart, startXz, type XzJob } from './decompress.ts';
import type { DownloadTap } from './download.ts';

/**
 * Decompresses a download while it is still arriving, when that pays: `xz -dc` is fed from the `.partial` file,
 * following it as it grows, so the download itself never waits for xz (a download that outruns xz is simply ahead
 * on disk). Fed from here xz loses nothing against reading the file itself (a child's stdin from Node is a
 * socketpair: the 3 GiB bench image took 15.8-16.3 s either way, by hand; only a shell pipe, `cat F | xz -dc`,
 * cost it 3-12%), so by default it starts with the first byte (`afterMs` 0; with more, only once the download has
 * run that long and has more than that left at its current rate). The result is kept only once the download's
 * sha256 has been verified; a restart from zero, a mismatch or a non-xz file discards it.
 */
export class XzTap implements DownloadTap {
  job?: XzJob;
  tmp: string;
  disabled = false;
  /** Bytes of the file on disk so far (the download writes each chunk before passing it here). */
  private available = 0;
  private fed = 0;
  private startedAt = 0;
  private ended = false;
  /** xz has exited, for whatever reason. */
  private exited = false;
  private feeding?: Promise<void>;
  /** Wakes the feeder waiting for more bytes. */
  private wake?: () => void;
  constructor(
    images: string,
    private readonly partial: string,
    private readonly name: string,
    private readonly afterMs: number,
    private readonly onBytes?: (done: number) => void,
  ) {
    this.tmp = join(images, `stream-${process.pid}-${Date.now()}.img.tmp-${process.pid}`);
  }
  data(chunk: Buffer, total?: number): void {
    if (this.disabled) return;
    if (this.available === 0) {
      this.startedAt = Date.now();
      // The first chunk decides: only an xz stream is followed.
      if (!isXzStart(chunk)) {
        this.disabled = true;
        return;
      }
    }
    this.available += chunk.length;
    if (this.job) {
      this.wake?.();
      return;
    }
    const elapsed = Date.now() - this.startedAt;
    const left = total === undefined ? Infinity : ((total - this.available) * elapsed) / this.available;
    if (this.afterMs === 0 || (elapsed >= this.afterMs && left > this.afterMs)) this.start();
  }
  private start(): void {
    // Opened now, while the download is sure to be there: the fd stays readable once it is renamed when finished.
    const fd = openSync(this.partial, 'r');
    this.job = startXz(this.tmp, { name: this.name, onBytes: this.onBytes });
    const gone = (): void => {
      this.exited = true;
      this.wake?.();
    };
    this.job.result.then(gone, gone);
    this.feeding = this.feed(fd);
    this.feeding.catch(() => undefined);
  }
  /** Nothing more can go into xz: the tap was reset, or xz has exited, or its stdin is closed. */
  private stopped(stdin: Writable): boolean {
    return this.disabled || this.exited || stdin.destroyed || stdin.writableEnded;
  }
  /**
   * Copy the file into xz's stdin as it grows, until the download has ended and all of it is in. Any of the
   * events it waits for (new bytes, the end, a reset, xz's exit, the pipe's drain or close) may come while it
   * reads the file or before it starts waiting, so every wait first looks at the state itself (see `until`).
   */
  private async feed(fd: number): Promise<void> {
    const stdin = this.job!.stdin!;
    // Two buffers in turn: one is read into while the other may still be held by the pipe; a buffer is reused
    // only once its write has gone out (a fresh 1 MiB buffer per write left ~35 MB of garbage at the peak).
    const bufs = [Buffer.allocUnsafe(FEED_BUF), Buffer.allocUnsafe(FEED_BUF)];
    const free = [true, true];
    let turn = 0;
    try {
      for (;;) {
        if (this.stopped(stdin)) return; // xz stopped early (damaged data): its exit status says why
        if (this.fed < this.available) {
          if (!free[turn]) {
            const t = turn;
            await this.until(() => this.stopped(stdin) || free[t]!, stdin);
            continue; // (looked at again from the top)
          }
          const buf = bufs[turn]!.subarray(0, Math.min(FEED_BUF, this.available - this.fed));
          const bytesRead = await readAt(fd, buf, this.fed);
          if (this.stopped(stdin)) return; // xz may have gone, or the tap been reset, during the read
          if (bytesRead === 0) throw new Error(`${this.partial}: ends at ${this.fed} bytes, ${this.available} were downloaded`);
          this.fed += bytesRead;
          const t = turn;
          free[t] = false;
          const ok = stdin.write(buf.subarray(0, bytesRead), () => {
            free[t] = true;
            this.wake?.();
          });
          turn = 1 - turn;
          // Wait for room in the pipe, or for xz to go: a pipe whose reader died never drains.
          if (!ok) await this.until(() => this.stopped(stdin) || !stdin.writableNeedDrain, stdin);
          continue;
        }
        if (this.ended) {
          this.job!.finishInput();
          return;
        }
        await this.until(() => this.stopped(stdin) || this.fed < this.available || this.ended);
      }
    } finally {
      closeSync(fd);
    }
  }
  /**
   * Resolve once `ready()` holds: checked at once (the event may have come already), then at each wake-up (new
   * bytes, the end of the download, a reset, xz's exit) and, with `stdin`, at its drain or close.
   */
  private until(ready: () => boolean, stdin?: Writable): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (!ready()) return;
        this.wake = undefined;
        stdin?.off('drain', check);
        stdin?.off('close', check);
        resolve();
      };
      this.wake = check;
      stdin?.on('drain', check);
      stdin?.on('close', check);
      check();
    });
  }
  /** The download has ended with all bytes verified: feed the rest, then xz's result. */
  async finish(): Promise<{ size: number; dataBytes: number }> {
    this.ended = true;
    this.wake?.();
    await this.feeding;
    return this.job!.result;
  }
  reset(): void {
    this.disabled = true;
    this.job?.kill();
    this.wake?.();
  }
  /** Stop and delete the partial output, waiting until xz has gone. */
  async discard(): Promise<void> {
    this.reset();
    await this.feeding?.catch(() => undefined);
    await this.job?.result.catch(() => undefined);
    rmSync(this.tmp, { force: true });
  }
}

const FEED_BUF = 1 << 20;

/** Read into all of `buf` from `pos` (fewer bytes only at end of file); the bytes read. */
function readAt(fd: number, buf: Buffer, pos: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, buf.length, pos, (err, n) => (err ? reject(err) : resolve(n))));
}

