// Test helper: builds, with the real tools (sfdisk, mkfs.vfat, mcopy, mkfs.ext4 -d), a small disk image laid out
// like Ubuntu 19.10.1 raspi: MBR, p1 FAT32 `system-boot` from LBA 2048 with the real boot text files and
// fake firmware/kernel binaries, p2 ext4 `writable` with the real root text files plus some bulk. Also 20.04-style
// (cmdline.txt) and 22.04-style (kernel=vmlinuz, no usercfg.txt) variants; initrd.img is a real gzip'd newc cpio.
// Nothing binary is committed: every fixture is made at test time. This file lays out the disk (sfdisk, mkfs.vfat +
// mcopy, mkfs.ext4 -d); lookalike-content.ts stages the files that go into it. Deterministic: the same options
// give the same bytes.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { FIXED_TIME, fakeArm64Image, fixTimes, listAll, listTree, stageBoot, stageRoot } from './lookalike-content.ts';

export { FIXTURE_DIR, fakeBytes, fakeArm64Image } from './lookalike-content.ts';

export type LookalikeVariant =
  /** 19.10.1 boot files as of the Pi gadget in October 2019 (config.txt with the fkms overlay). */
  | 'oct2019'
  /** 19.10.1 boot files as of late November 2019 (`fixrtc`, no fkms overlay). */
  | 'late2019'
  /** 20.04-style: u-boot for the Pi 4 still, but `cmdline=cmdline.txt` (no nobtcmd.txt). */
  | 'focal'
  /** 22.04-style: `kernel=vmlinuz`, `initramfs initrd.img followkernel`, cmdline.txt, no usercfg.txt include. */
  | 'jammy';

export interface LookalikeOptions {
  variant?: LookalikeVariant;
  /** Add the stray `cmdline.txt` that config.txt does not use (19.10 variants only; default true). */
  legacyCmdline?: boolean;
  /** Size of p1 in MiB (the real image has 256; default 64 keeps tests fast; FAT32 needs ≥ 33). */
  bootMiB?: number;
  /** Size of p2 in MiB (default 64). */
  rootMiB?: number;
  /** Bytes of extra file data in the root fs, spread over several files (default 2 MiB). */
  bulkBytes?: number;
  /** Size of the uncompressed fake arm64 Image (default 3 MiB). */
  kernelBytes?: number;
  /** MBR disk signature (default 0x2a7b5e1c). */
  diskId?: number;
  /** Base name of the image file (default `ubuntu-lookalike.img`). */
  name?: string;
  /** Block size of the ext4 root (default 4096, as the real image; 1024 exercises other code paths). */
  rootBlockSize?: 1024 | 2048 | 4096;
  /** Extra `mkfs.ext4 -O` feature list, e.g. '^metadata_csum,^64bit'. */
  rootFeatures?: string;
  /** Extra files for the boot partition: name → content. */
  extraBootFiles?: Record<string, string | Buffer>;
  /** Extra files for the root fs: path (relative, no leading slash) → content. */
  extraRootFiles?: Record<string, string | Buffer>;
}

export interface LookalikePartition {
  number: number;
  /** MBR type byte. */
  type: number;
  bootable: boolean;
  startLba: number;
  sectors: number;
  /** Byte offset of the partition in the image. */
  offset: number;
  /** Size in bytes. */
  size: number;
  fs: 'vfat' | 'ext4';
  label: string;
}

export interface Lookalike {
  /** Path of the disk image. */
  img: string;
  /** The directory everything was made in (the caller cleans it up). */
  dir: string;
  variant: LookalikeVariant;
  /** Size of the image in bytes. */
  size: number;
  diskId: number;
  /** `diskId` as the 8 lowercase hex digits used in PARTUUID=. */
  diskIdHex: string;
  boot: LookalikePartition;
  root: LookalikePartition;
  partitions: LookalikePartition[];
  /** The staged trees copied into the filesystems (read them to compare with what our readers return). */
  bootTree: string;
  rootTree: string;
  /** Names of the files at the root of system-boot (and overlays/…). */
  bootFiles: string[];
  /** Path of the uncompressed fake kernel Image (what `vmlinuz` decompresses to). */
  kernelImage: string;
  /** sha256 hex of the uncompressed Image. */
  kernelSha256: string;
  /** The cmdline file config.txt selects for a Pi 4 in this variant. */
  expectedCmdlineFile: string;
  /** The kernel config.txt selects for a Pi 4 in this variant. */
  expectedKernel: string;
}

const SECTOR = 512;
const MiB = 1024 * 1024;

function run(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, {
      input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PATH: `${process.env.PATH}:/usr/sbin:/sbin`,
        MTOOLS_SKIP_CHECK: '1',
        TZ: 'UTC',
        E2FSPROGS_FAKE_TIME: String(FIXED_TIME.getTime() / 1000),
      },
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr || e.message}`);
  }
}

/** Build a lookalike image under `dir` (created if missing). Takes about a second. */
export async function makeUbuntuLookalike(dir: string, opts: LookalikeOptions = {}): Promise<Lookalike> {
  const variant = opts.variant ?? 'oct2019';
  const bootMiB = opts.bootMiB ?? 64;
  const rootMiB = opts.rootMiB ?? 64;
  if (bootMiB < 33) throw new Error('makeUbuntuLookalike: FAT32 needs bootMiB >= 33');
  const diskId = (opts.diskId ?? 0x2a7b5e1c) >>> 0;
  mkdirSync(dir, { recursive: true });
  const img = join(dir, opts.name ?? 'ubuntu-lookalike.img');
  const bootTree = join(dir, 'tree-boot');
  const rootTree = join(dir, 'tree-root');
  rmSync(bootTree, { recursive: true, force: true });
  rmSync(rootTree, { recursive: true, force: true });
  mkdirSync(bootTree, { recursive: true });
  mkdirSync(rootTree, { recursive: true });

  const kernel = fakeArm64Image(opts.kernelBytes ?? 3 * MiB);
  const kernelImage = join(dir, 'expected-vmlinux');
  writeFileSync(kernelImage, kernel);
  stageBoot(bootTree, variant, opts, gzipSync(kernel, { level: 6 }));
  stageRoot(rootTree, opts);
  fixTimes(bootTree);
  fixTimes(rootTree);

  const bootStart = 2048;
  const bootSectors = (bootMiB * MiB) / SECTOR;
  const rootStart = bootStart + bootSectors;
  const rootSectors = (rootMiB * MiB) / SECTOR;
  const size = (rootStart + rootSectors) * SECTOR;
  rmSync(img, { force: true });
  writeFileSync(img, '');
  truncateSync(img, size);

  const diskIdHex = diskId.toString(16).padStart(8, '0');
  run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', img], [
    'label: dos',
    `label-id: 0x${diskIdHex}`,
    'unit: sectors',
    `start=${bootStart}, size=${bootSectors}, type=c, bootable`,
    `start=${rootStart}, size=${rootSectors}, type=83`,
    '',
  ].join('\n'));

  // FAT32 at its offset; block count in KiB.
  run('mkfs.vfat', ['-F', '32', '-n', 'system-boot', '--invariant', '--offset', String(bootStart), img, String(bootSectors / 2)]);
  const at = `${img}@@${bootStart * SECTOR}`;
  const top = readdirSync(bootTree).filter((f) => f !== 'overlays');
  run('mcopy', ['-i', at, '-o', '-m', ...top.map((f) => join(bootTree, f)), '::/']);
  run('mcopy', ['-i', at, '-s', '-o', '-m', join(bootTree, 'overlays'), '::/']);

  // ext4 at its offset, from the staged tree.
  run('mkfs.ext4', [
    '-q', '-F', '-L', 'writable', '-b', String(opts.rootBlockSize ?? 4096), ...(opts.rootFeatures ? ['-O', opts.rootFeatures] : []), '-U', '0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9', '-E', `offset=${rootStart * SECTOR},hash_seed=6b2f8d1e-9a3c-4e5f-8071-92a3b4c5d6e7`,
    '-d', rootTree, img, `${rootMiB}M`,
  ]);
  // mke2fs -d copies each file's ctime, which utimes cannot set (it is when the tree was staged): set it here, so
  // the same options give the same bytes on every run.
  const inodes = ['/', ...listAll(rootTree)].map((p) => `sif "${p}" ctime @${FIXED_TIME.getTime() / 1000}`);
  run('debugfs', ['-w', '-f', '-', `${img}?offset=${rootStart * SECTOR}`], inodes.join('\n') + '\n');

  const mk = (number: number, type: number, bootable: boolean, startLba: number, sectors: number, fs: 'vfat' | 'ext4', label: string): LookalikePartition => ({
    number, type, bootable, startLba, sectors, offset: startLba * SECTOR, size: sectors * SECTOR, fs, label,
  });
  const boot = mk(1, 0x0c, true, bootStart, bootSectors, 'vfat', 'system-boot');
  const root = mk(2, 0x83, false, rootStart, rootSectors, 'ext4', 'writable');
  const late = variant === 'oct2019' || variant === 'late2019';
  return {
    img,
    dir,
    variant,
    size,
    diskId,
    diskIdHex,
    boot,
    root,
    partitions: [boot, root],
    bootTree,
    rootTree,
    bootFiles: listTree(bootTree),
    kernelImage,
    kernelSha256: createHash('sha256').update(kernel).digest('hex'),
    expectedCmdlineFile: late ? 'nobtcmd.txt' : 'cmdline.txt',
    expectedKernel: variant === 'jammy' ? 'vmlinuz' : 'uboot_rpi_4.bin',
  };
}

/** A fresh temporary directory under os.tmpdir(); remove it with `rmSync(dir, {recursive: true, force: true})`. */
export function tempDir(prefix = 'pi-image-test-'): string {
  const d = join(tmpdir(), `${prefix}${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Whether the tools this helper needs are on PATH (tests may skip with a clear message when not). */
export function lookalikeToolsPresent(): boolean {
  const path = `${process.env.PATH}:/usr/sbin:/sbin`.split(':');
  return ['sfdisk', 'mkfs.vfat', 'mcopy', 'mkfs.ext4', 'cpio', 'gzip'].every((t) => path.some((p) => existsSync(join(p, t))));
}

/** Read a file back from the staged trees (what the image should contain). */
export function stagedFile(l: Lookalike, part: 'boot' | 'root', path: string): Buffer {
  return readFileSync(join(part === 'boot' ? l.bootTree : l.rootTree, path));
}
