// Test helper for image-source tests: a small, mostly empty disk image made with the real tools (sfdisk, mkfs.vfat,
// mcopy, mkfs.ext4 -d) on a sparse file, and its .xz, .gz and .zip forms (xz, gzip, zip).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, openSync, ftruncateSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

export interface SourceFixture {
  img: string;
  xz: string;
  gz: string;
  zip: string;
  size: number;
  sha256: string;
}

function run(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): void {
  execFileSync(cmd, args, {
    input: opts.input,
    cwd: opts.cwd,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'ignore', 'pipe'],
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, MTOOLS_SKIP_CHECK: '1', E2FSPROGS_FAKE_TIME: '1571000000' },
  });
}

/** Make a 48 MiB disk image (FAT16 `system-boot` at LBA 2048 + ext4 `writable`) and its compressed forms in `dir`. */
export function makeSourceFixture(dir: string): SourceFixture {
  mkdirSync(dir, { recursive: true });
  const img = join(dir, 'disk.img');
  const size = 48 * 1024 * 1024;
  const fd = openSync(img, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
  run('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', img], { input: 'label: dos\nlabel-id: 0x1234abcd\n2048,32768,c,*\n34816,,83\n' });
  run('mkfs.vfat', ['-F', '16', '-n', 'system-boot', '--invariant', '--offset', '2048', img, '16384']);
  const boot = join(dir, 'boot');
  mkdirSync(boot, { recursive: true });
  writeFileSync(join(boot, 'config.txt'), '[pi4]\nkernel=uboot_rpi_4.bin\n[all]\narm_64bit=1\ncmdline=nobtcmd.txt\n');
  writeFileSync(join(boot, 'vmlinuz'), Buffer.alloc(300_000, 0x5a));
  run('mcopy', ['-i', `${img}@@${2048 * 512}`, join(boot, 'config.txt'), join(boot, 'vmlinuz'), '::/']);
  const root = join(dir, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/hostname'), 'ubuntu\n');
  writeFileSync(join(root, 'etc/data.bin'), createHash('sha512').update('x').digest().toString('hex').repeat(4000));
  run('mkfs.ext4', ['-q', '-F', '-L', 'writable', '-U', '0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9', '-E', `offset=${34816 * 512}`, '-d', root, img, `${(size - 34816 * 512) / 1024}k`]);
  run('sh', ['-c', `xz -T1 -1 -k -c "${img}" > "${img}.xz" && gzip -1 -c "${img}" > "${img}.gz"`]);
  run('zip', ['-q', '-1', 'disk.img.zip', 'disk.img'], { cwd: dir });
  const sha256 = createHash('sha256').update(readFileSync(img)).digest('hex');
  return { img, xz: `${img}.xz`, gz: `${img}.gz`, zip: join(dir, 'disk.img.zip'), size, sha256 };
}

/** sha256 of a file (small test files only). */
export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
