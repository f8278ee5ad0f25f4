// flash(): write a disk image to a block device or a file — only the blocks its bmap maps (without one, the map is
// made on the fly from the image's data extents, holes unread), with writeback started as it goes; on a device the
// first MiB last, fsync, re-read the partition table, drop its cache; then read every mapped range back and compare
// its sha256 with the bmap (or, mapped on the fly, its bytes with the image's). A file is checked while written:
// read back and compared with the image behind the writer, the image hashed against the bmap beside it. Safety
// checks run first (safety.ts); nothing here prints.
import { openSync, closeSync, readSync, writeSync, fsync, fsyncSync, ftruncateSync, statSync, renameSync, rmSync, existsSync, readFileSync, readdirSync, constants } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { hashRangesParallel, compareRangesParallel, Watermark } from './hash-workers.ts';
import { createHash } from 'node:crypto';
import { dirname, basename, join } from 'node:path';
import { parseBmap, bmapByteRanges, blockRangeBytes, scanAndHash, type Bmap, type BmapRange } from '../image/bmap.ts';
import { forEachDataRun, rangesBytes } from '../image/sparse.ts';
import { dataExtents } from '../image/extents.ts';
import { processAlive } from '../pid.ts';
import { CorruptImageError, InputError, SafetyError, VerifyError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { describeTarget, listDrives, drivesHoldingPath, systemDrives, type Drive, type Target } from './drives.ts';
import { assessTarget, enforce, describeDrive, type Finding } from './safety.ts';

/** The first MiB (MBR, partition gap, boot loader area) is written last. */
export const HEAD_BYTES = 1 << 20;
const CHUNK = 8 << 20;
/** Verify hashes on worker threads from this many mapped bytes on. */
const PARALLEL_MIN = 64 << 20;
const PATH_ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

/** Verification found the target differs from what was written: `offset` is the first bad byte. */
export class FlashVerifyError extends VerifyError {
  readonly offset: number;
  constructor(message: string, offset: number, hint?: string) {
    super(message, hint);
    this.offset = offset;
  }
}

export interface ConfirmRequest {
  target: string;
  /** "Generic Flash Disk, 31.9 GB, usb, removable" or "regular file". */
  description: string;
  size: number;
  imageSize: number;
  warnings: string[];
}

export interface FlashOptions {
  /** Raw disk image to write. */
  image: string;
  /** Block device (/dev/sdb) or file path. */
  target: string;
  /** A bmap file path or parsed bmap; undefined = use `<image>.bmap` when present; false = ignore any bmap file. */
  bmap?: string | Bmap | false;
  /** Read back and compare (default true). */
  verify?: boolean;
  onProgress?: OnProgress;
  /** Asked before writing a device (or an existing non-image file); return false to cancel. */
  confirm?: (req: ConfirmRequest) => boolean | Promise<boolean>;
  /** Consent given up front (the --yes flag): no confirm needed. */
  yes?: boolean;
  /** Lift soft refusals (internal disk, partition). */
  force?: boolean;
  /** Unmount the target's mounted filesystems (with umount) instead of refusing. */
  unmount?: boolean;
  onWarning?: (message: string) => void;
  /** Label for progress events ("sd", "ssd"). */
  detail?: string;
  /** I/O size in bytes (default 8 MiB). */
  chunk?: number;
}

export interface FlashResult {
  image: string;
  target: string;
  targetKind: 'file' | 'device';
  imageSize: number;
  /** Bytes the map says hold data (and were written). */
  mappedBytes: number;
  bmap: { source: 'file' | 'generated'; path?: string; ranges: number };
  verified: boolean;
  writeSeconds: number;
  verifySeconds: number;
  unmounted: string[];
}

function readFull(fd: number, buf: Buffer, pos: number, name: string): void {
  for (let n = 0; n < buf.length; ) {
    const got = readSync(fd, buf, n, buf.length - n, pos + n);
    if (got === 0) throw new CorruptImageError(`${name}: ends early`, pos + n);
    n += got;
  }
}

function writeFull(fd: number, buf: Uint8Array, pos: number): void {
  for (let n = 0; n < buf.length; ) n += writeSync(fd, buf, n, buf.length - n, pos + n);
}

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));

const fsyncAsync = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (err) => (err ? reject(err) : resolve())));

/** Start writeback early: every FLUSH_EVERY bytes written, an fsync (off this thread) is started if none is running,
 * so the disk works while this thread still writes instead of all at the end. */
const FLUSH_EVERY = 64 << 20;
class Flusher {
  private since = 0;
  private running?: Promise<void>;
  private failed?: Error;
  constructor(private readonly fd: number) {}
  wrote(n: number): void {
    if (this.failed) throw this.failed;
    this.since += n;
    if (this.running || this.since < FLUSH_EVERY) return;
    this.since = 0;
    this.running = fsyncAsync(this.fd).then(
      () => (this.running = undefined),
      (err: Error) => {
        this.failed = err;
        this.running = undefined;
      },
    );
  }
  /** Wait for the fsync in flight; throws what it failed with. */
  async settle(): Promise<void> {
    await this.running;
    if (this.failed) throw this.failed;
  }
}

/** Reports progress at most every 100 ms and lets the event loop breathe (spinners, signals). */
function ticker(onProgress: OnProgress | undefined, phase: string, total: number, detail?: string) {
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

function loadBmap(opts: FlashOptions): { bmap?: Bmap; path?: string } {
  if (opts.bmap === false) return {};
  if (typeof opts.bmap === 'object') return { bmap: opts.bmap };
  const path = opts.bmap ?? (existsSync(`${opts.image}.bmap`) ? `${opts.image}.bmap` : undefined);
  if (!path) return {};
  if (!existsSync(path)) throw new InputError(`${path}: bmap file not found`);
  return { bmap: parseBmap(readFileSync(path, 'utf8'), path), path };
}

function unmountAll(drive: Drive): string[] {
  const done: string[] = [];
  const points = drive.mountpoints.filter((m) => m.startsWith('/')).sort((a, b) => b.length - a.length);
  for (const m of points) {
    try {
      execFileSync('umount', [m], { env: PATH_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
      done.push(m);
    } catch (err) {
      const msg = String((err as { stderr?: Buffer }).stderr ?? err).trim();
      throw new SafetyError(`could not unmount ${m} (${drive.path}): ${msg}`, 'Close whatever uses it and unmount it yourself.');
    }
  }
  return done;
}

/** Check the target, unmounting when asked; returns the (re-read) target, findings to show, and what was unmounted. */
async function checkSafety(
  opts: FlashOptions,
  imageSize: number,
): Promise<{ target: Target; warnings: Finding[]; unmounted: string[] }> {
  const imageStats = statSync(opts.image);
  const needDrives = (() => {
    try {
      return statSync(opts.target).isBlockDevice();
    } catch {
      return false;
    }
  })();
  let drives: Drive[] = needDrives ? listDrives() : [];
  let target = describeTarget(opts.target, drives);
  const ctx = () => ({
    imageSize,
    imageStats,
    systemDrives: needDrives ? systemDrives(drives) : [],
    sourceDrives: needDrives ? drivesHoldingPath(drives, opts.image, imageStats) : [],
  });
  let { findings, needsConfirmation } = assessTarget(target, ctx());
  let unmounted: string[] = [];
  if (opts.unmount && target.kind === 'device' && findings.some((f) => f.level === 'mounted')) {
    // Unmount only when nothing else would refuse anyway.
    enforce(findings.filter((f) => f.level !== 'mounted'), opts);
    unmounted = unmountAll(target.drive);
    drives = listDrives();
    target = describeTarget(opts.target, drives);
    ({ findings, needsConfirmation } = assessTarget(target, ctx()));
  }
  const warnings = enforce(findings, opts);
  for (const w of warnings) opts.onWarning?.(w.message);
  if (needsConfirmation && !opts.yes) {
    const description = target.kind === 'device' ? describeDrive(target.drive) : target.kind === 'file' ? 'existing file that is not a disk image' : 'unknown';
    const req: ConfirmRequest = {
      target: opts.target,
      description,
      size: target.kind === 'device' || target.kind === 'file' ? target.size : 0,
      imageSize,
      warnings: warnings.map((w) => w.message),
    };
    if (!opts.confirm) {
      throw new SafetyError(`${opts.target} (${description}) will be overwritten: confirmation needed`, 'Run on a terminal to be asked, or pass --yes.');
    }
    if (!(await opts.confirm(req))) throw new SafetyError(`cancelled: ${opts.target} was not written`);
  }
  return { target, warnings, unmounted };
}

/** Write `image` to `target`. See FlashOptions; throws SafetyError, InputError, FlashVerifyError. */
export async function flash(opts: FlashOptions): Promise<FlashResult> {
  const verify = opts.verify !== false;
  const chunk = opts.chunk ?? CHUNK;
  let imageSize: number;
  try {
    imageSize = statSync(opts.image).size;
  } catch {
    throw new InputError(`${opts.image}: image not found`);
  }
  if (!statSync(opts.image).isFile()) throw new InputError(`${opts.image}: not a regular file`);
  const loaded = loadBmap(opts);
  const where = loaded.path ?? 'bmap';
  if (loaded.bmap && loaded.bmap.imageSize !== imageSize) {
    throw new InputError(
      `${where}: made for an image of ${loaded.bmap.imageSize} bytes, but ${opts.image} has ${imageSize}`,
      'Use the bmap that belongs to this image, or leave --bmap out to map the image on the fly.',
    );
  }
  const { target, unmounted } = await checkSafety(opts, imageSize);
  const isDevice = target.kind === 'device';
  const blockSize = loaded.bmap?.blockSize ?? 4096;

  // Files are written under a temporary name beside the target and renamed after verification.
  const writePath = isDevice ? opts.target : join(dirname(opts.target), `.${basename(opts.target)}.partial-${process.pid}`);
  if (!isDevice) removeStalePartials(opts.target);
  const src = openSync(opts.image, 'r');
  let dst = -1;
  const t0 = Date.now();
  let ranges: BmapRange[] = [];
  const checksumType = loaded.bmap ? loaded.bmap.checksumType : 'none';
  // Without a map, the image's data extents (holes are skipped unread: extents.ts) are what is read.
  const extents = loaded.bmap ? undefined : (dataExtents(opts.image, { blockSize, size: imageSize }) ?? [{ start: 0, length: imageSize }]);
  let flusher: Flusher | undefined;
  // A file is verified while it is written: worker threads read back behind the writer (what a later read would see
  // too, the same page cache), and its last fsync runs beside them. A device is synced, its cache dropped, and only
  // then read back from the medium.
  const follow = verify && !isDevice ? followingVerify(opts.image, writePath, loaded.bmap, extents!, imageSize) : undefined;
  let lastSync: Promise<void> | undefined;
  try {
    dst = isDevice
      ? openSync(writePath, constants.O_RDWR | constants.O_EXCL) // exclusive: fails with EBUSY if mounted or in use
      : openSync(writePath, constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC, 0o644);
    if (!isDevice) ftruncateSync(dst, imageSize);
    flusher = new Flusher(dst);
    follow?.start();
    // The first MiB goes last: on a device after an fsync of the rest (a flash that dies halfway leaves nothing
    // bootable-looking); in a file, which takes the target's name only once verified, right after the rest.
    const head = Buffer.alloc(Math.min(HEAD_BYTES, imageSize));
    if (isDevice) {
      // Erase the old partition table first, so a flash that dies halfway leaves nothing bootable-looking.
      writeFull(dst, head, 0);
      fsyncSync(dst);
    }
    const headRuns: { start: number; end: number }[] = [];
    const put = (offset: number, data: Buffer) => {
      let d = data;
      let off = offset;
      if (off < head.length) {
        const n = Math.min(d.length, head.length - off);
        d.copy(head, off, 0, n);
        headRuns.push({ start: off, end: off + n });
        d = d.subarray(n);
        off += n;
      }
      if (d.length > 0) writeFull(dst, d, off);
      flusher!.wrote(d.length);
    };
    const buf = Buffer.allocUnsafe(Math.max(blockSize, Math.floor(chunk / blockSize) * blockSize));

    if (loaded.bmap) {
      ranges = loaded.bmap.ranges;
      const byteRanges = bmapByteRanges(loaded.bmap);
      const total = rangesBytes(byteRanges);
      const tick = ticker(opts.onProgress, 'write', total, opts.detail);
      let done = 0;
      for (const r of byteRanges) {
        for (let off = r.start; off < r.start + r.length; ) {
          const view = buf.subarray(0, Math.min(buf.length, r.start + r.length - off));
          readFull(src, view, off, opts.image);
          put(off, view);
          off += view.length;
          done += view.length;
          follow?.mark.passed(off);
          await tick(done);
        }
      }
      await tick(done, true);
    } else {
      // No map: write only the non-zero blocks of the extents, and note those runs as the map. Nothing is hashed:
      // verify compares the target with the image.
      const tick = ticker(opts.onProgress, 'write', rangesBytes(extents!), opts.detail);
      let run: { start: number; end: number } | undefined;
      const close = () => {
        if (run) ranges.push({ first: run.start / blockSize, last: Math.ceil(run.end / blockSize) - 1 });
        run = undefined;
      };
      let done = 0;
      for (const x of extents!) {
        for (let pos = x.start; pos < x.start + x.length; ) {
          const view = buf.subarray(0, Math.min(buf.length, x.start + x.length - pos));
          readFull(src, view, pos, opts.image);
          forEachDataRun(view, blockSize, (s, e) => {
            if (run && run.end !== pos + s) close();
            if (!run) run = { start: pos + s, end: pos + s };
            run.end = pos + e;
            put(pos + s, view.subarray(s, e));
          });
          pos += view.length;
          done += view.length;
          follow?.mark.passed(pos);
          await tick(done);
        }
      }
      close();
      await tick(done, true);
    }
    await flusher.settle();
    if (isDevice) fsyncSync(dst);
    for (const r of headRuns) writeFull(dst, head.subarray(r.start, r.end), r.start);
    follow?.mark.finish(1);
    if (isDevice) fsyncSync(dst);
    else {
      lastSync = fsyncAsync(dst);
      lastSync.catch(() => undefined);
    }
  } catch (err) {
    follow?.mark.finish(-1);
    await follow?.result?.catch(() => undefined);
    await flusher?.settle().catch(() => undefined);
    if (dst >= 0) closeSync(dst);
    closeSync(src);
    if (!isDevice) rmSync(writePath, { force: true });
    throw err;
  }
  const writeSeconds = (Date.now() - t0) / 1000;
  if (isDevice) {
    closeSync(dst);
    for (const args of [['--rereadpt'], ['--flushbufs']]) {
      // Ask the kernel to see the new partitions, and drop cached pages so verify reads the medium.
      try {
        execFileSync('blockdev', [...args, opts.target], { env: PATH_ENV, stdio: 'ignore' });
      } catch {
        /* not fatal: loop devices without partition scanning, kernels that refuse */
      }
    }
  }
  const mappedBytes = ranges.reduce((s, r) => s + blockRangeBytes(r, blockSize, imageSize).length, 0);
  const t1 = Date.now();
  try {
    if (follow) {
      const bad = await follow.result;
      if (bad) {
        const fd = openSync(writePath, 'r');
        try {
          const a = Buffer.allocUnsafe(chunk);
          locateMismatch(src, fd, opts.image, opts.target, bad.range, bad.start, bad.length, a, Buffer.allocUnsafe(chunk), where);
        } finally {
          closeSync(fd);
        }
      }
      await ticker(opts.onProgress, 'verify', mappedBytes, opts.detail)(mappedBytes, true);
    } else if (verify) {
      await verifyTarget(src, opts.image, writePath, opts.target, ranges, { blockSize, imageSize, checksumType, chunk, onProgress: opts.onProgress, detail: opts.detail, where });
    }
    await lastSync;
  } catch (err) {
    await lastSync?.catch(() => undefined);
    closeSync(src);
    if (!isDevice) {
      closeSync(dst);
      rmSync(writePath, { force: true });
    }
    throw err;
  }
  closeSync(src);
  if (!isDevice) closeSync(dst);
  if (!isDevice) renameSync(writePath, opts.target);
  return {
    image: opts.image,
    target: opts.target,
    targetKind: isDevice ? 'device' : 'file',
    imageSize,
    mappedBytes,
    bmap: { source: loaded.bmap ? 'file' : 'generated', path: loaded.path, ranges: ranges.length },
    verified: verify,
    writeSeconds,
    verifySeconds: (Date.now() - t1) / 1000,
    unmounted,
  };
}

/** Pieces of at most this many bytes, so the workers share an extent list with one huge extent. */
const PIECE = 64 << 20;

/**
 * Plan the verify of a file target that trails its writer (see flash): the target must equal the image, compared
 * in pieces behind the writer (holes in both read as zeros); with a bmap whose ranges carry checksums, the image's
 * ranges must also hash to them — hashed from the start, as the image is all there, so one long range's sha256
 * (which cannot be split) runs beside the writing instead of after it. Together: the target holds what the bmap
 * says, byte for byte. Undefined when it is too small to be worth threads: then it is verified after writing.
 */
function followingVerify(image: string, target: string, bmap: Bmap | undefined, extents: { start: number; length: number }[] | undefined, imageSize: number) {
  const hashed = bmap && bmap.checksumType !== 'none' && bmap.ranges.every((r) => r.checksum);
  const bs = bmap?.blockSize ?? 4096;
  const spans = bmap ? bmapByteRanges(bmap) : extents!;
  const pieces: { start: number; length: number }[] = [];
  for (const x of spans) {
    for (let off = x.start; off < x.start + x.length; off += PIECE) pieces.push({ start: off, length: Math.min(PIECE, x.start + x.length - off) });
  }
  const pieceBlocks = pieces.map((t) => ({ first: Math.floor(t.start / bs), last: Math.ceil((t.start + t.length) / bs) - 1 }));
  if (rangesBytes(pieces) < PARALLEL_MIN || pieces.length < 2 || availableParallelism() < 2) return undefined;
  const mark = new Watermark(Math.min(HEAD_BYTES, imageSize));
  let result!: Promise<{ range: BmapRange; start: number; length: number } | undefined>;
  return {
    mark,
    get result() {
      return result;
    },
    /** Start the workers (once the target exists): one compares, one hashes the image when there are checksums. */
    start() {
      result = (async () => {
        const [same, sums] = await Promise.all([
          compareRangesParallel(target, image, pieces, { follow: mark, workers: hashed ? 1 : undefined }),
          hashed ? hashRangesParallel(image, spans, { algorithm: bmap.checksumType, workers: 1 }) : undefined,
        ]);
        const i = same.indexOf(false);
        if (i >= 0) return { range: pieceBlocks[i], start: pieces[i].start, length: pieces[i].length };
        const j = sums ? sums.findIndex((d, k) => d !== bmap!.ranges[k].checksum) : -1;
        return j < 0 ? undefined : { range: bmap!.ranges[j], start: spans[j].start, length: spans[j].length };
      })();
      result.catch(() => undefined);
    },
  };
}

/**
 * Check an already-written target against an image: every mapped range (from the bmap, or found by scanning the
 * image) must hash to the map's checksum. Throws FlashVerifyError naming the first bad byte.
 */
export async function verifyImage(opts: { image: string; target: string; bmap?: string | Bmap | false; onProgress?: OnProgress }): Promise<{ mappedBytes: number }> {
  const loaded = loadBmap(opts as FlashOptions);
  const src = openSync(opts.image, 'r');
  try {
    const imageSize = statSync(opts.image).size;
    const blockSize = loaded.bmap?.blockSize ?? 4096;
    const ranges = loaded.bmap?.ranges ?? scanAndHash(src, opts.image, imageSize, blockSize);
    await verifyTarget(src, opts.image, opts.target, opts.target, ranges, {
      blockSize, imageSize, checksumType: loaded.bmap?.checksumType ?? 'sha256', onProgress: opts.onProgress, where: loaded.path,
    });
    return { mappedBytes: ranges.reduce((s, r) => s + blockRangeBytes(r, blockSize, imageSize).length, 0) };
  } finally {
    closeSync(src);
  }
}

/**
 * Read every mapped range of the target back and compare its checksum with the map (or, for ranges without a
 * checksum, with the image). On a mismatch, compare byte by byte with the image to name the first bad offset.
 */
export async function verifyTarget(
  src: number,
  imageName: string,
  targetPath: string,
  targetName: string,
  ranges: BmapRange[],
  o: { blockSize: number; imageSize: number; checksumType: string; chunk?: number; onProgress?: OnProgress; detail?: string; where?: string },
): Promise<void> {
  const fd = openSync(targetPath, 'r');
  try {
    const buf = Buffer.allocUnsafe(o.chunk ?? CHUNK);
    const other = Buffer.allocUnsafe(buf.length);
    const total = ranges.reduce((s, r) => s + blockRangeBytes(r, o.blockSize, o.imageSize).length, 0);
    const tick = ticker(o.onProgress, 'verify', total, o.detail);
    let done = 0;
    const hashed = o.checksumType !== 'none' && ranges.every((r) => r.checksum);
    if (total >= PARALLEL_MIN && ranges.length > 1 && availableParallelism() > 1) {
      // One core cannot keep up with sha256 (or read two files) at disk speed: check the ranges on several. With
      // checksums, the target's ranges must hash to them; without, they must equal the image's bytes.
      const tasks = ranges.map((r) => blockRangeBytes(r, o.blockSize, o.imageSize));
      const onBytes = (n: number) => {
        done += n;
        void tick(done);
      };
      const good = hashed
        ? (await hashRangesParallel(targetPath, tasks, { algorithm: o.checksumType, onBytes })).map((d, i) => d === ranges[i].checksum)
        : await compareRangesParallel(targetPath, imageName, tasks, { onBytes });
      const bad = good.indexOf(false);
      if (bad >= 0) locateMismatch(src, fd, imageName, targetName, ranges[bad], tasks[bad].start, tasks[bad].length, buf, other, o.where ?? 'bmap');
      await tick(total, true);
      return;
    }
    for (const r of ranges) {
      const { start, length } = blockRangeBytes(r, o.blockSize, o.imageSize);
      const h = r.checksum && o.checksumType !== 'none' ? createHash(o.checksumType) : undefined;
      let equalToImage = true;
      for (let off = start; off < start + length; ) {
        const view = buf.subarray(0, Math.min(buf.length, start + length - off));
        readFull(fd, view, off, targetName);
        if (h) h.update(view);
        else {
          const img = other.subarray(0, view.length);
          readFull(src, img, off, imageName);
          if (!img.equals(view)) equalToImage = false;
        }
        off += view.length;
        done += view.length;
        await tick(done);
      }
      const ok = h ? h.digest('hex') === r.checksum : equalToImage;
      if (!ok) locateMismatch(src, fd, imageName, targetName, r, start, length, buf, other, o.where ?? 'bmap');
    }
    await tick(done, true);
  } finally {
    closeSync(fd);
  }
}

function locateMismatch(
  src: number, fd: number, imageName: string, targetName: string, r: BmapRange, start: number, length: number,
  a: Buffer, b: Buffer, where: string,
): never {
  for (let off = start; off < start + length; ) {
    const n = Math.min(a.length, start + length - off);
    const t = a.subarray(0, n);
    const i = b.subarray(0, n);
    readFull(fd, t, off, targetName);
    readFull(src, i, off, imageName);
    if (!t.equals(i)) {
      let k = 0;
      while (t[k] === i[k]) k++;
      const at = off + k;
      throw new FlashVerifyError(
        `verify failed: ${targetName} differs from ${imageName} at byte offset ${at} (0x${at.toString(16)}; blocks ${r.first}-${r.last}): ` +
          `wrote 0x${i[k].toString(16).padStart(2, '0')}, read back 0x${t[k].toString(16).padStart(2, '0')}`,
        at,
        'The card or disk may be failing, or something else wrote to it; try again or use another one.',
      );
    }
    off += n;
  }
  throw new FlashVerifyError(
    `verify failed: ${imageName} does not match ${where} in blocks ${r.first}-${r.last} (the target holds exactly the image's bytes)`,
    start,
    'The bmap belongs to another version of the image: make it again, or flash without --bmap.',
  );
}

/** A flash into a file that was killed (kill -9, power cut) left `.NAME.partial-PID`: removed by the next flash
 *  into the same file, once that pid is gone. */
function removeStalePartials(target: string): void {
  const dir = dirname(target);
  const prefix = `.${basename(target)}.partial-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // the directory's problems are reported when the file is opened
  }
  for (const name of names) {
    const pid = name.startsWith(prefix) ? Number(name.slice(prefix.length)) : NaN;
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) rmSync(join(dir, name), { force: true });
  }
}
