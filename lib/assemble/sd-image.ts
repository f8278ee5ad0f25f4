// The SD-card boot images of a lane's nodes: an MBR with one FAT32 `system-boot` partition, a copy of the base
// image's boot files (only allocated clusters; copied by the kernel from a complete base, image/kernel-copy.ts,
// into all of the lane's images in one go), the kernel decompressed for direct boot, config.txt and the cmdline
// file that config.txt really uses edited for root on the SSD, and the node's cloud-init seed. The base's boot
// partition is parsed and checked once per lane (openBootSource).
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { FileIO, type BlockIO } from '../image/io.ts';
import { CopiedIO } from '../image/copied-io.ts';
import type { ImageDigest } from '../image/digest.ts';
import { writeMbr, partitionIO, SECTOR, type MbrPartition } from '../image/mbr.ts';
import { copyRanges } from '../image/sparse.ts';
import { copyRangesInKernel } from '../image/kernel-copy.ts';
import { FatFs } from '../image/fat/index.ts';
import {
  resolveBootConfig,
  editConfigForDirectBoot,
  editCmdline,
  isGzip,
  extractKernel,
  decompressScript,
  decompressSumFile,
  DECOMPRESS_SCRIPT_NAME,
} from '../pi/index.ts';
import { CorruptImageError } from '../errors.ts';
import { FIRST_LBA } from './ssd-image.ts';

/** What the build needs to know of the release's boot partition: catalog data, not code. */
export interface BootStyle {
  /** Kernel file in the base image's boot partition (e.g. vmlinuz). */
  kernel: string;
  /** Initramfs file (e.g. initrd.img). */
  initrd: string;
  /** gzip: must be gzip; none: boot as is; auto: decompress when the bytes are gzip. */
  compression: 'gzip' | 'none' | 'auto';
  /** Name the decompressed kernel is written to when the kernel is gzip (e.g. vmlinux). */
  decompressedKernel: string;
  /** Pi model whose config sections count (pi4). */
  model: string;
  /** The Pi 4 firmware file the base's boot partition must hold (start4.elf). */
  pi4Firmware: string;
}

/** The base image's boot partition, as every SD image of a lane copies it: parsed and checked once. */
export interface BootSource {
  io: BlockIO;
  fat: FatFs;
  /** Allocated byte ranges of the partition (relative to it). */
  used: { start: number; length: number }[];
}

/** Parse the base's boot partition once for a lane; a directory loop or a missing Pi 4 firmware fails by name. */
export function openBootSource(base: BlockIO, bootPart: MbrPartition, boot: BootStyle): BootSource {
  const io = partitionIO(base, bootPart);
  const fat = FatFs.open(io);
  fat.checkTree(); // the copy carries the base's tree: a directory loop in it fails the build, by its path
  if (!fat.exists(boot.pi4Firmware)) {
    throw new CorruptImageError(`${base.name}: the boot partition ${bootPart.index} has no ${boot.pi4Firmware}: a Pi 4 cannot boot from it`, io.base);
  }
  return { io, fat, used: fat.usedRanges() };
}

export interface SdImageResult {
  path: string;
  size: number;
  diskSignature: number;
  kernel: string;
  cmdlineFile: string;
  cmdline: string;
  mapped: { start: number; length: number }[];
}

/** The base image's kernel as the SD images need it: decompressed when it is gzip (and the catalog allows it). */
export interface PreparedKernel {
  /** The decompressed kernel in a temporary file, with the sha256 line of the packed one (the script's sum file). */
  unpacked?: { path: string; size: number; packedSumText: string };
}

/**
 * Look at the kernel in the base image's boot partition once per lane, streaming: check it against the catalog's
 * compression, and gunzip a gzip kernel to `tmpPath` (pi/kernel.ts extractKernel, which hashes the packed bytes on
 * the way; a kernel is tens of MB: never whole in memory). The caller deletes the file.
 */
export async function prepareKernel(base: BlockIO, source: BootSource, boot: BootStyle, tmpPath: string): Promise<PreparedKernel> {
  const fat = source.fat;
  if (!fat.exists(boot.kernel)) throw new CorruptImageError(`${base.name}: boot partition has no kernel ${boot.kernel}`);
  // The first chunk tells whether it is gzip.
  const first = fat.readFileChunks(boot.kernel)[Symbol.iterator]().next();
  const gzip = !first.done && isGzip(first.value);
  if (boot.compression === 'gzip' && !gzip) {
    throw new CorruptImageError(`${base.name}: ${boot.kernel} is not gzip-compressed, as the catalog says it is`);
  }
  if (!gzip || boot.compression === 'none') return {};
  const fd = openSync(tmpPath, 'w', 0o600);
  try {
    let at = 0;
    const r = await extractKernel(fat.readFileChunks(boot.kernel), (c) => {
      for (let w = 0; w < c.length; ) w += writeSync(fd, c, w, c.length - w, at + w);
      at += c.length;
    }, `${base.name}: ${boot.kernel}`);
    closeSync(fd);
    return { unpacked: { path: tmpPath, size: r.bytesOut, packedSumText: `${r.sha256In}\n` } };
  } catch (err) {
    closeSync(fd);
    rmSync(tmpPath, { force: true });
    throw err;
  }
}

/** A file's bytes in 1 MiB chunks, read synchronously (one buffer, reused: each chunk is consumed before the next). */
function* fileChunks(path: string): Generator<Buffer> {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) return;
      yield buf.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/** One node's SD image: what differs between the images of a lane. */
export interface SdTarget {
  path: string;
  diskSignature: number;
  /** Kernel arguments to set: root=… and rootfstype=… replace the base image's; the rest are added when absent. */
  cmdline: string[];
  seed: Record<string, string>;
  /** The seed holds secrets: the image is written 0600. */
  secret?: boolean;
}

/** Write the SD images of a lane, in the order of `targets`. */
export function writeSdImages(opts: {
  targets: SdTarget[];
  base: BlockIO;
  /** The base image as a complete file, for the kernel to copy the boot files from (omit while it is written). */
  basePath?: string;
  source: BootSource;
  bootPart: MbrPartition;
  boot: BootStyle;
  clock: () => Date;
  /** The kernel, looked at (and decompressed) once per lane by prepareKernel. */
  kernel: PreparedKernel;
  /** fsync each image once written. */
  fsync?: boolean;
  /** Checksum each image once written, before it is closed (`io` reads the copied boot files from the base). */
  digest: (io: CopiedIO, sd: SdImageResult, index: number) => ImageDigest;
}): (SdImageResult & { digest: ImageDigest })[] {
  const size = (FIRST_LBA + opts.bootPart.sectors) * SECTOR;
  const part: MbrPartition = { ...opts.bootPart, index: 1, startLba: FIRST_LBA, start: FIRST_LBA * SECTOR };
  const outs: FileIO[] = [];
  try {
    for (const t of opts.targets) {
      const out = FileIO.create(t.path, size, t.secret ? { mode: 0o600 } : {});
      outs.push(out);
      writeMbr(out, {
        diskSignature: t.diskSignature,
        partitions: [{ type: opts.bootPart.type, bootable: opts.bootPart.bootable, startLba: FIRST_LBA, sectors: opts.bootPart.sectors }],
      });
    }
    // The base's boot files: copied by the kernel from a complete base into every image at once (shared where the
    // file system has reflinks), else through here.
    const used = opts.source.used;
    const inKernel =
      opts.basePath !== undefined &&
      copyRangesInKernel(opts.basePath, opts.targets.map((t) => t.path), used.map((r) => ({ start: opts.bootPart.start + r.start, length: r.length })), { delta: part.start - opts.bootPart.start });
    // Each image is then read through a view that takes the copied bytes from the base while they are unchanged:
    // the base's pages are cached, a fresh copy's (a reflink above all) are not.
    const copied = used.map((r) => ({ start: part.start + r.start, length: r.length }));
    return opts.targets.map((t, i) => {
      if (!inKernel) copyRanges(opts.source.io, partitionIO(outs[i]!, part), used, { chunk: 1 << 20 });
      const view = new CopiedIO(outs[i]!, opts.base, copied, opts.bootPart.start - part.start);
      const sd = finishSdImage(t, partitionIO(view, part), part, size, opts);
      return { ...sd, digest: opts.digest(view, sd, i) };
    });
  } finally {
    for (const out of outs) out.close();
  }
}

/** The node's own part of an SD image whose boot files are in place: kernel, config, cmdline, seed. */
function finishSdImage(
  t: SdTarget,
  dst: BlockIO,
  part: MbrPartition,
  size: number,
  opts: { base: BlockIO; boot: BootStyle; clock: () => Date; kernel: PreparedKernel; fsync?: boolean },
): SdImageResult {
  // Freed clusters (a seed file shorter than the base's) are zeroed: the image's checksums take every block outside
  // the allocated clusters as zero.
  const fat = FatFs.open(dst, { clock: opts.clock, zeroFreed: true });
  const read = (name: string): string | undefined => (fat.exists(name) ? fat.readFile(name).toString('latin1') : undefined);

  // Kernel: gzip → decompressed copy booted directly; anything else (raw Image, bzImage) is booted as it is.
  const k = opts.kernel;
  const kernel = k.unpacked ? opts.boot.decompressedKernel : opts.boot.kernel;
  if (k.unpacked) {
    const names = { packed: opts.boot.kernel, kernel };
    fat.writeFile(kernel, { size: k.unpacked.size, chunks: fileChunks(k.unpacked.path) });
    fat.writeFile(DECOMPRESS_SCRIPT_NAME, Buffer.from(decompressScript(names)));
    fat.writeFile(decompressSumFile(names), Buffer.from(k.unpacked.packedSumText));
  }

  // config.txt (and the file the release keeps for user changes): boot that kernel and initramfs directly.
  for (const [file, text] of Object.entries(editConfigForDirectBoot(read, { kernel, initramfs: opts.boot.initrd, model: opts.boot.model }))) {
    fat.writeFile(file, Buffer.from(text, 'latin1'));
  }
  const after = resolveBootConfig(read, opts.boot.model);
  if (after.kernel !== kernel) {
    throw new CorruptImageError(`${opts.base.name}: config.txt still selects ${after.kernel} for ${opts.boot.model} after editing (wanted ${kernel})`);
  }

  // The cmdline file config.txt really uses: root on the SSD by PARTUUID, plus the profile's flags.
  const cmdText = read(after.cmdlineFile) ?? '';
  const value = (key: string) => t.cmdline.find((a) => a.startsWith(`${key}=`))?.slice(key.length + 1);
  const cmdline = editCmdline(cmdText, {
    root: value('root'),
    rootfstype: value('rootfstype'),
    add: t.cmdline.filter((a) => !a.startsWith('root=') && !a.startsWith('rootfstype=')),
  });
  fat.writeFile(after.cmdlineFile, Buffer.from(cmdline, 'latin1'));

  for (const [name, text] of Object.entries(t.seed)) fat.writeFile(name, Buffer.from(text, 'utf8'));
  fat.flush();
  if (opts.fsync) dst.sync(); // the whole image file
  return {
    path: t.path,
    size,
    diskSignature: t.diskSignature,
    kernel,
    cmdlineFile: after.cmdlineFile,
    cmdline: cmdline.trim(),
    mapped: [{ start: 0, length: SECTOR }, ...fat.usedRanges().map((r) => ({ start: r.start + part.start, length: r.length }))],
  };
}
