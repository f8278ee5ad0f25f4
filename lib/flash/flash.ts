// flash(): write a disk image to a block device or a file, and check what was written.
// The steps, each in its own file:
// 1. target.ts: the safety checks (safety.ts), confirmation and unmounting; a file target is written under a
//    temporary name beside it, renamed once verified; a device is opened exclusively.
// 2. copy.ts: the bmap copy — only the blocks the image's bmap maps (without one, a map made on the fly from the
//    image's data extents, holes unread), writeback started as it goes, the first MiB last.
// 3. on a device: fsync, re-read the partition table, drop its cache, so verify reads the medium.
// 4. verify.ts: read every mapped range back and compare its sha256 with the bmap (or, mapped on the fly, its bytes
//    with the image's). A file is checked while written: workers read it back behind the writer and hash it
//    against the bmap (or compare it with the image).
// Nothing here prints; errors are SafetyError, InputError, FlashVerifyError.
import { fsyncSync, statSync, renameSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { blockRangeBytes, type Bmap, type BmapRange } from '../image/bmap.ts';
import { dataExtents } from '../image/extents.ts';
import { FileIO } from '../image/io.ts';
import { InputError } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { loadBmap } from './bmap-input.ts';
import { copyImage, fsyncAsync, CHUNK } from './copy.ts';
import { checkTarget, openForWrite, writePathFor, PATH_ENV, type ConfirmRequest } from './target.ts';
import { followingVerify, locateMismatch, openTarget, verifyTarget } from './verify.ts';
import { ticker } from './ticker.ts';

export { HEAD_BYTES } from './copy.ts';
export { FlashVerifyError, verifyImage, verifyTarget } from './verify.ts';
export type { ConfirmRequest } from './target.ts';

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
  const { target, unmounted } = await checkTarget(opts, imageSize);
  const isDevice = target.kind === 'device';
  const blockSize = loaded.bmap?.blockSize ?? 4096;

  const writePath = writePathFor(opts.target, isDevice);
  const src = FileIO.open(opts.image);
  let dst: FileIO | undefined;
  const t0 = Date.now();
  let ranges: BmapRange[] = [];
  const checksumType = loaded.bmap ? loaded.bmap.checksumType : 'none';
  // Without a map, the image's data extents (holes are skipped unread: extents.ts) are what is read.
  const extents = loaded.bmap ? undefined : (dataExtents(opts.image, { blockSize, size: imageSize }) ?? [{ start: 0, length: imageSize }]);
  // A file is verified while it is written: worker threads read back behind the writer (what a later read would see
  // too, the same page cache), and its last fsync runs beside them. A device is synced, its cache dropped, and only
  // then read back from the medium.
  const follow = verify && !isDevice ? followingVerify(opts.image, writePath, loaded.bmap, extents!, imageSize) : undefined;
  let lastSync: Promise<void> | undefined;
  try {
    dst = openForWrite(writePath, isDevice, imageSize);
    follow?.start();
    ranges = await copyImage(src, dst, { bmap: loaded.bmap, extents, blockSize, imageSize, chunk, device: isDevice, mark: follow?.mark, onProgress: opts.onProgress, detail: opts.detail });
    if (isDevice) fsyncSync(dst.fd);
    else {
      lastSync = fsyncAsync(dst.fd);
      lastSync.catch(() => undefined);
    }
  } catch (err) {
    follow?.mark.finish(-1);
    await follow?.result?.catch(() => undefined);
    dst?.close();
    src.close();
    if (!isDevice) rmSync(writePath, { force: true });
    throw err;
  }
  const writeSeconds = (Date.now() - t0) / 1000;
  if (isDevice) {
    dst.close();
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
        const back = openTarget(writePath, opts.target, imageSize);
        try {
          locateMismatch(src, back, bad.range, bad.start, bad.length, Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk), where);
        } finally {
          back.close();
        }
      }
      await ticker(opts.onProgress, 'verify', mappedBytes, opts.detail)(mappedBytes, true);
    } else if (verify) {
      await verifyTarget(src, writePath, opts.target, ranges, { blockSize, imageSize, checksumType, chunk, onProgress: opts.onProgress, detail: opts.detail, where });
    }
    await lastSync;
  } catch (err) {
    await lastSync?.catch(() => undefined);
    src.close();
    if (!isDevice) {
      dst.close();
      rmSync(writePath, { force: true });
    }
    throw err;
  }
  src.close();
  if (!isDevice) dst.close();
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
