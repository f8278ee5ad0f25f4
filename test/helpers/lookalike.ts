// Test helper: builds, with the real tools (sfdisk, mkfs.vfat, mcopy, mkfs.ext4 -d), a small disk image laid out
// like Ubuntu 19.10.1 raspi: MBR, p1 FAT32 `system-boot` from LBA 2048 with the real boot text files and
// fake firmware/kernel binaries, p2 ext4 `writable` with the real root text files plus some bulk. Also 20.04-style
// (cmdline.txt) and 22.04-style (kernel=vmlinuz, no usercfg.txt) variants; initrd.img is a real gzip'd newc cpio.
// Nothing binary is committed: every fixture is made at test time, deterministically (same options → same bytes).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync, truncateSync, lutimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'ubuntu-19.10.1-raspi');

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
/** Timestamps of every staged file and of the filesystems (the 19.10 release day). */
const FIXED_TIME = new Date('2019-10-17T12:00:00Z');
const MiB = 1024 * 1024;

/** A deterministic byte stream (xorshift32 seeded from a string): fake firmware and kernel bodies. */
export function fakeBytes(seed: string, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let s = createHash('sha256').update(seed).digest().readUInt32LE(0) || 1;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    buf.writeUInt32LE(s, i);
  }
  for (; i < length; i++) buf[i] = (i * 31) & 0xff;
  return buf;
}

/**
 * A fake arm64 Linux `Image` (Documentation/arm64/booting.rst): 64-byte header with the magic `ARM\x64` at 56,
 * text_offset 0, image_size = length, then a body half text-like (compressible) and half random.
 */
export function fakeArm64Image(length: number, seed = 'linux-5.3.0-1014-raspi2'): Buffer {
  const img = Buffer.alloc(length);
  img.writeUInt32LE(0xfa405a4d, 0); // code0: "MZ" + branch, as real EFI-stub kernels start
  img.writeUInt32LE(0x14000000 | 0x1000, 4); // code1: b stext
  img.writeBigUInt64LE(0n, 8); // text_offset
  img.writeBigUInt64LE(BigInt(length), 16); // image_size
  img.writeBigUInt64LE(0xan, 24); // flags: LE, 4K pages
  img.write('ARM\x64', 56, 'latin1');
  const half = Math.floor((length - 64) / 2);
  const text = Buffer.from(`Linux version 5.3.0-1014-raspi2 (buildd@bos02-arm64-010) #16-Ubuntu SMP ${seed}\n`);
  for (let o = 64; o < 64 + half; o += text.length) text.copy(img, o, 0, Math.min(text.length, 64 + half - o));
  fakeBytes(seed, length - 64 - half).copy(img, 64 + half);
  return img;
}

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

// Config files of the later releases, modelled on the Ubuntu raspi gadget (focal / jammy branches).
const FOCAL_CONFIG = `# Please DO NOT modify this file; if you need to modify the boot config, the
# "usercfg.txt" file is the place to include user changes. Please refer to
# the README file for a description of the various configuration files on
# the boot partition.

# The unusual ordering below is deliberate; older firmwares (in particular the
# version initially shipped with bionic) don't understand the conditional
# [sections] below and simply ignore them. The Pi4 doesn't boot at all with
# firmwares this old so it's safe to place at the top. Of the Pi2 and Pi3, the
# Pi3 uboot happens to work happily on the Pi2, so it needs to go at the bottom
# to support old firmwares.

[pi4]
kernel=uboot_rpi_4.bin
max_framebuffers=2

[pi2]
kernel=uboot_rpi_2.bin

[pi3]
kernel=uboot_rpi_3.bin

[all]
arm_64bit=1
device_tree_address=0x03000000

# The following settings are "defaults" expected to be overridden by the
# included configuration. The only reason they are included is, again, to
# support old firmwares which don't understand the "include" command.

enable_uart=1
cmdline=cmdline.txt

include syscfg.txt
include usercfg.txt
`;
const FOCAL_SYSCFG = `# This file is intended to contain system-made configuration changes. User
# configuration changes should be placed in "usercfg.txt". Please refer to the
# README file for a description of the various configuration files on the boot
# partition.

enable_uart=1
dtparam=audio=on
dtparam=i2c_arm=on
dtparam=spi=on
cmdline=cmdline.txt
`;
const FOCAL_CMDLINE =
  'net.ifnames=0 dwc_otg.lpm_enable=0 console=serial0,115200 console=tty1 root=LABEL=writable rootfstype=ext4 elevator=deadline rootwait fixrtc\n';
const JAMMY_CONFIG = `[all]
kernel=vmlinuz
cmdline=cmdline.txt
initramfs initrd.img followkernel

[pi4]
max_framebuffers=2
arm_boost=1

[all]
# Enable the audio output, I2C and SPI interfaces on the GPIO header. As these
# parameters related to the base device-tree they must appear *before* any
# other dtoverlay= specification
dtparam=audio=on
dtparam=i2c_arm=on
dtparam=spi=on

# Comment out the following line if the edid is not parsed correctly
#hdmi_drive=2

# Enable the serial pins
enable_uart=1

# Autoload overlays for any recognized cameras or displays that are attached
# to the CSI/DSI ports. Please note this is for libcamera support, *not* for
# the legacy camera stack
camera_auto_detect=1
display_auto_detect=1

# Config settings specific to arm64
arm_64bit=1
dtoverlay=dwc2

[cm4]
# Enable the USB2 outputs on the IO board (assuming your CM4 is plugged into
# such a board)
dtoverlay=dwc2,dr_mode=host

[all]
`;
const JAMMY_CMDLINE =
  'console=serial0,115200 dwc_otg.lpm_enable=0 console=tty1 root=LABEL=writable rootfstype=ext4 rootwait fixrtc quiet splash\n';

/** Write the boot partition's files into `tree`; returns the list of names written. */
function stageBoot(tree: string, variant: LookalikeVariant, opts: LookalikeOptions, kernelGz: Buffer): void {
  mkdirSync(join(tree, 'overlays'), { recursive: true });
  const src = join(FIXTURE_DIR, 'system-boot');
  for (const f of readdirSync(src)) cpSync(join(src, f), join(tree, f));
  if (variant === 'late2019') {
    const late = join(FIXTURE_DIR, 'system-boot-late2019');
    for (const f of readdirSync(late)) cpSync(join(late, f), join(tree, f));
  }
  if (variant === 'focal' || variant === 'jammy') {
    for (const f of ['nobtcmd.txt', 'btcmd.txt', 'nobtcfg.txt', 'btcfg.txt']) rmSync(join(tree, f));
    writeFileSync(join(tree, 'config.txt'), variant === 'focal' ? FOCAL_CONFIG : JAMMY_CONFIG);
    writeFileSync(join(tree, 'cmdline.txt'), variant === 'focal' ? FOCAL_CMDLINE : JAMMY_CMDLINE);
    if (variant === 'focal') writeFileSync(join(tree, 'syscfg.txt'), FOCAL_SYSCFG);
    else for (const f of ['syscfg.txt', 'usercfg.txt']) rmSync(join(tree, f));
  } else if (opts.legacyCmdline !== false) {
    cpSync(join(FIXTURE_DIR, 'system-boot-legacy', 'cmdline.txt'), join(tree, 'cmdline.txt'));
  }
  // Firmware and u-boot: small deterministic fakes with the real names.
  const blobs: Record<string, number> = {
    'bootcode.bin': 52456,
    'start.elf': 2_900, // sizes scaled down; only names and presence matter
    'start4.elf': 22_800,
    'start4x.elf': 7_900,
    'start4cd.elf': 3_100,
    'start4db.elf': 4_800,
    'start_x.elf': 3_900,
    'start_cd.elf': 1_600,
    'start_db.elf': 4_100,
    'fixup.dat': 7_300,
    'fixup4.dat': 5_400,
    'fixup4x.dat': 8_400,
    'fixup4cd.dat': 3_100,
    'fixup4db.dat': 8_400,
    'fixup_x.dat': 10_200,
    'fixup_cd.dat': 3_100,
    'fixup_db.dat': 10_200,
    'bcm2710-rpi-2-b.dtb': 26_000,
    'bcm2710-rpi-3-b.dtb': 26_500,
    'bcm2710-rpi-3-b-plus.dtb': 27_000,
    'bcm2710-rpi-cm3.dtb': 25_000,
    'bcm2711-rpi-4-b.dtb': 40_000,
    'bcm2837-rpi-3-b.dtb': 18_000,
    'uboot_rpi_2.bin': 480_000,
    'uboot_rpi_3.bin': 520_000,
    'uboot_rpi_4.bin': 530_000,
    'boot.scr': 2_600,
    'overlays/vc4-fkms-v3d.dtbo': 2_900,
    'overlays/vc4-kms-v3d.dtbo': 3_500,
    'overlays/pi3-disable-bt.dtbo': 1_000,
    'overlays/dwc2.dtbo': 1_200,
    'overlays/uart0.dtbo': 900,
    'overlays/disable-bt.dtbo': 1_000,
    'overlays/README': 700,
  };
  for (const [name, size] of Object.entries(blobs)) writeFileSync(join(tree, name), fakeBytes(name, size));
  writeFileSync(join(tree, 'vmlinuz'), kernelGz);
  writeFileSync(join(tree, 'initrd.img'), makeInitrd(join(dirname(tree), 'tree-initrd')));
  for (const [name, content] of Object.entries(opts.extraBootFiles ?? {})) {
    mkdirSync(dirname(join(tree, name)), { recursive: true });
    writeFileSync(join(tree, name), content);
  }
}

/**
 * An initramfs like initramfs-tools makes: a gzip'd newc cpio (made by the real `cpio -o -H newc`) holding an `init`
 * script, `conf/initramfs.conf`, `scripts/local` and some module-like bulk. Deterministic (--reproducible, fixed
 * times, sorted names, gzip -n).
 */
function makeInitrd(work: string): Buffer {
  rmSync(work, { recursive: true, force: true });
  for (const d of ['bin', 'conf', 'scripts', 'lib/modules/5.3.0-1014-raspi2/kernel/drivers/usb/storage']) mkdirSync(join(work, d), { recursive: true });
  writeFileSync(join(work, 'init'), '#!/bin/sh\n# lookalike of initramfs-tools init\n. /conf/initramfs.conf\n. /scripts/local\nexec run-init ${rootmnt} ${init} "$@"\n', { mode: 0o755 });
  writeFileSync(join(work, 'conf/initramfs.conf'), 'MODULES=most\nBUSYBOX=auto\nCOMPRESS=gzip\nBOOT=local\n');
  writeFileSync(join(work, 'scripts/local'), '# local root: mount ${ROOT} on ${rootmnt}\n');
  writeFileSync(join(work, 'lib/modules/5.3.0-1014-raspi2/kernel/drivers/usb/storage/uas.ko'), fakeBytes('uas.ko', 120_000));
  writeFileSync(join(work, 'bin/busybox'), fakeBytes('busybox', 300_000), { mode: 0o755 });
  fixTimes(work);
  return execFileSync('sh', ['-c', 'find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --reproducible -R 0:0 --quiet | gzip -n -6'], {
    cwd: work,
    maxBuffer: 64 << 20,
  });
}

function stageRoot(tree: string, opts: LookalikeOptions): void {
  cpSync(join(FIXTURE_DIR, 'rootfs'), tree, { recursive: true });
  symlinkSync('../usr/lib/os-release', join(tree, 'etc', 'os-release'));
  for (const d of ['boot/firmware', 'home', 'tmp', 'var/lib/cloud', 'usr/bin', 'usr/share/doc/base-files', 'root']) {
    mkdirSync(join(tree, d), { recursive: true });
  }
  writeFileSync(join(tree, 'usr/share/doc/base-files/README'), 'This is a lookalike of the Ubuntu root filesystem.\n');
  // Bulk: a few larger files (several extents' worth) and many small ones (a directory bigger than one block).
  const bulk = opts.bulkBytes ?? 2 * MiB;
  const big = Math.floor(bulk * 0.8);
  const parts = 4;
  for (let i = 0; i < parts; i++) writeFileSync(join(tree, 'usr/bin', `tool${i}`), fakeBytes(`tool${i}`, Math.floor(big / parts)));
  const small = bulk - big;
  const many = join(tree, 'usr/share/locale-lookalike');
  mkdirSync(many, { recursive: true });
  const n = 200;
  for (let i = 0; i < n; i++) {
    writeFileSync(join(many, `message-catalog-${String(i).padStart(3, '0')}.mo`), fakeBytes(`mo${i}`, Math.floor(small / n)));
  }
  symlinkSync('/usr/share/doc/base-files/README', join(tree, 'usr/share/doc/README.link'));
  for (const [name, content] of Object.entries(opts.extraRootFiles ?? {})) {
    mkdirSync(dirname(join(tree, name)), { recursive: true });
    writeFileSync(join(tree, name), content);
  }
}

/** Give every staged file and directory one fixed time so the images are reproducible. */
function fixTimes(root: string): void {
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory()) fixTimes(p);
    lutimesSync(p, FIXED_TIME, FIXED_TIME);
  }
  lutimesSync(root, FIXED_TIME, FIXED_TIME);
}

/** Every path under `root` (directories too), as `/a/b`. */
function listAll(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel), { withFileTypes: true }).flatMap((e) => {
    const p = `${rel}/${e.name}`;
    return e.isDirectory() ? [p, ...listAll(root, p)] : [p];
  });
}

function listTree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listTree(root, p));
    else out.push(p);
  }
  return out.sort();
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
