// Lays the cached Debian root fs out exactly like Ubuntu's raspi image, without mounting anything: MBR (sfdisk);
// p1 FAT32 `system-boot` (mkfs.vfat --offset + mcopy) holding vmlinuz, initrd.img, config.txt, the cmdline file and
// the default NoCloud seed; p2 ext4 `writable` (mkfs.ext4 -d from the root fs tree, at its byte offset). The result
// is a raw base image cached beside the root fs, the stand-in for `ubuntu-…-preinstalled-server-arm64+raspi.img`.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, openSync, closeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runBytes } from './sh.ts';
import { cacheDir, type RootFs } from './rootfs.ts';

const SECTOR = 512;
export const BOOT_START = 2048; // LBA, as in Ubuntu's images
export const BOOT_SECTORS = 524288; // 256 MiB, as in 19.10.1
export const ROOT_START = BOOT_START + BOOT_SECTORS; // 526336, as in 19.10.1

/** Boot partition text files (the pi4 section selects the kernel, like Ubuntu's; cmdline file as in 19.10). */
export const BOOT_TEXT: Record<string, string> = {
  'config.txt': [
    '# Stand-in for the Ubuntu raspi config.txt: same structure, an amd64 Debian kernel (a bzImage) instead of u-boot.',
    '[pi4]',
    'kernel=vmlinuz',
    'max_framebuffers=2',
    '[pi3]',
    'kernel=uboot_rpi_3.bin',
    '[all]',
    'arm_64bit=1',
    'enable_uart=1',
    'initramfs initrd.img followkernel',
    'cmdline=nobtcmd.txt',
    'include syscfg.txt',
    'include usercfg.txt',
    '',
  ].join('\n'),
  'syscfg.txt': '# system settings (as in Ubuntu: included from config.txt)\ndtparam=i2c_arm=on\ndtparam=spi=on\n',
  'usercfg.txt': '# Place "config.txt" changes (dtparam, dtoverlay, disable_overscan, etc.) in\n# this file.\n',
  // The Pi 4 firmware by its name only: build refuses a boot partition without it (QEMU loads the kernel itself).
  'start4.elf': 'stand-in: the Raspberry Pi 4 firmware file is named here; QEMU never reads it\n',
  'nobtcmd.txt': 'net.ifnames=0 console=tty1 console=ttyS0 root=LABEL=writable rootfstype=ext4 rootwait fixrtc\n',
  // The default seed, as Ubuntu ships it (password login, misspelt instance_id key, eth0 DHCP).
  'user-data': '#cloud-config\nchpasswd:\n  expire: true\n  list:\n  - ubuntu:ubuntu\nssh_pwauth: true\n',
  'meta-data': '# This is the meta-data configuration file for cloud-init.\ninstance_id: cloud-image\n',
  'network-config': 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    optional: true\n',
};

const LAYOUT_REVISION = 1;

export interface BaseImage {
  path: string;
  bytes: number;
  built: boolean;
  seconds: number;
}

/** Byte offset of a partition of `img` (1-based), from sfdisk's own reading of the table. */
export function partitionOffset(img: string, n: number): { offset: number; size: number } {
  const t = JSON.parse(run('sfdisk', ['--json', img])) as { partitiontable: { partitions: { start: number; size: number }[] } };
  const p = t.partitiontable.partitions[n - 1];
  if (!p) throw new Error(`${img} has no partition ${n}`);
  return { offset: p.start * SECTOR, size: p.size * SECTOR };
}

/** Reads a file of a FAT partition with mtools (`img@@offset`); undefined when the file is missing. */
export function readFat(img: string, offset: number, name: string): Buffer | undefined {
  try {
    return runBytes('mcopy', ['-n', '-i', `${img}@@${offset}`, `::/${name}`, '-']);
  } catch (e) {
    if (/not found|No such file/i.test((e as Error).message)) return undefined;
    throw e;
  }
}

/** Writes (replaces) a file on a FAT partition with mtools. */
export function writeFat(img: string, offset: number, name: string, content: string | Buffer): void {
  const dir = mkdtempSync(join(tmpdir(), 'pi-image-boot-fat-'));
  try {
    const f = join(dir, name.replace(/\//g, '_'));
    writeFileSync(f, content);
    run('mcopy', ['-o', '-n', '-i', `${img}@@${offset}`, f, `::/${name}`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function duBytes(dir: string): number {
  return Number(run('du', ['-sb', '--one-file-system', dir]).split(/\s/)[0]);
}

/** Makes (or returns the cached) base image for a root fs. */
export function ensureBaseImage(rootfs: RootFs): BaseImage {
  const key = createHash('sha256')
    .update(JSON.stringify({ rootfs: rootfs.key, BOOT_TEXT, LAYOUT_REVISION }))
    .digest('hex')
    .slice(0, 16);
  const path = join(cacheDir(), `debian12-amd64-raspi-layout-${key}.img`);
  if (existsSync(path)) return { path, bytes: statSync(path).size, built: false, seconds: 0 };
  const started = Date.now();
  const partial = `${path}.partial`;
  rmSync(partial, { force: true });

  // Root partition: the tree's size plus room for first boot (logs, keys), rounded up to MiB.
  const used = duBytes(rootfs.dir);
  const rootBytes = Math.ceil((used * 1.3 + 384 * 2 ** 20) / 2 ** 20) * 2 ** 20;
  const total = ROOT_START * SECTOR + rootBytes;
  const fd = openSync(partial, 'w');
  ftruncateSync(fd, total);
  closeSync(fd);
  run('sfdisk', ['--quiet', partial], {
    input: `label: dos\nlabel-id: 0x4ec8ea53\nunit: sectors\n\n` +
      `start=${BOOT_START}, size=${BOOT_SECTORS}, type=c, bootable\nstart=${ROOT_START}, type=83\n`,
  });

  // p1: FAT32 system-boot, written at its offset in the image file.
  run('mkfs.vfat', ['-F', '32', '-s', '4', '-h', String(BOOT_START), '-n', 'system-boot', '-i', '4ec8ea53', '--offset', String(BOOT_START), partial, String((BOOT_SECTORS * SECTOR) / 1024)]);
  const bootOff = BOOT_START * SECTOR;
  const kernels = readdirSync(join(rootfs.dir, 'boot')).filter((f) => f.startsWith('vmlinuz-')).sort();
  const kernel = kernels.at(-1);
  if (!kernel) throw new Error(`no kernel in ${rootfs.dir}/boot`);
  const version = kernel.slice('vmlinuz-'.length);
  run('mcopy', ['-n', '-i', `${partial}@@${bootOff}`, join(rootfs.dir, 'boot', kernel), '::/vmlinuz']);
  run('mcopy', ['-n', '-i', `${partial}@@${bootOff}`, join(rootfs.dir, 'boot', `initrd.img-${version}`), '::/initrd.img']);
  for (const [name, text] of Object.entries(BOOT_TEXT)) writeFat(partial, bootOff, name, text);

  // p2: ext4 writable from the tree (root owns everything already: -d keeps owners and modes).
  run('mkfs.ext4', ['-q', '-F', '-L', 'writable', '-d', rootfs.dir, '-E', `offset=${ROOT_START * SECTOR}`, partial, `${rootBytes / 1024}k`]);
  renameSync(partial, path);
  return { path, bytes: total, built: true, seconds: (Date.now() - started) / 1000 };
}
