// Test helper: what goes into the lookalike image's filesystems (lookalike.ts builds the image around it): the
// boot partition's files per variant (the real 19.10.1 text files from test/fixtures, later releases' config.txt
// and cmdline.txt, fake firmware, a fake arm64 kernel, a real gzip'd newc cpio initrd) and the root's (the
// fixture's real text files plus bulk). Deterministic: the same options give the same bytes and times.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync, lutimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LookalikeOptions, LookalikeVariant } from './lookalike.ts';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'ubuntu-19.10.1-raspi');
/** Timestamps of every staged file and of the filesystems (the 19.10 release day). */
export const FIXED_TIME = new Date('2019-10-17T12:00:00Z');
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

/** Write the boot partition's files into `tree`. */
export function stageBoot(tree: string, variant: LookalikeVariant, opts: LookalikeOptions, kernelGz: Buffer): void {
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

/** Write the root filesystem's files into `tree`: the fixture's real text files, then bulk. */
export function stageRoot(tree: string, opts: LookalikeOptions): void {
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
export function fixTimes(root: string): void {
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const p = join(root, e.name);
    if (e.isDirectory()) fixTimes(p);
    lutimesSync(p, FIXED_TIME, FIXED_TIME);
  }
  lutimesSync(root, FIXED_TIME, FIXED_TIME);
}

/** Every path under `root` (directories too), as `/a/b`. */
export function listAll(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel), { withFileTypes: true }).flatMap((e) => {
    const p = `${rel}/${e.name}`;
    return e.isDirectory() ? [p, ...listAll(root, p)] : [p];
  });
}

/** Every file under `root`, as sorted relative paths. */
export function listTree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listTree(root, p));
    else out.push(p);
  }
  return out.sort();
}
