// The first-boot script's disk and kernel steps, run for real: `firstboot.sh brick` with sfdisk on a disk image
// file (idempotent), and the apt hook's vmlinux re-decompression on a directory standing in for /boot/firmware.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync, readFileSync, readdirSync, existsSync, truncateSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PACKAGE_ROOT } from '../../lib/cluster/profile.ts';
import { tempDir } from '../helpers/cluster.ts';

const t = tempDir('pi-image-firstboot-');
process.on('exit', t.cleanup);
const script = join(PACKAGE_ROOT, 'cloud-init', 'firstboot.sh');

function runStep(step: string, env: Record<string, string>) {
  return spawnSync('bash', [script, step], { env: { ...process.env, ...env }, encoding: 'utf8' });
}

test('brick: appends a raw partition in the free space after root, once', () => {
  const disk = join(t.dir, 'ssd.img');
  writeFileSync(disk, '');
  truncateSync(disk, 64 * 2 ** 20);
  execFileSync('sfdisk', ['--quiet', disk], { input: 'label: dos\nlabel-id: 0x8ba77522\nstart=2048, size=40960, type=83\n' });
  const envFile = join(t.dir, 'cluster.env');
  writeFileSync(envFile, "BRICK='1'\nBRICK_DEVICE='/dev/sda2'\n");
  const env = { PI_IMAGE_DISK: disk, PI_IMAGE_ENV: envFile, PI_IMAGE_STATE: join(t.dir, 'done') };
  const r1 = runStep('brick', env);
  assert.is(r1.status, 0, r1.stderr + r1.stdout);
  assert.match(r1.stdout, /creating the brick partition/);
  const table = JSON.parse(execFileSync('sfdisk', ['-J', disk]).toString()).partitiontable;
  assert.is(table.id, '0x8ba77522'); // disk signature (and so root=PARTUUID) kept
  assert.is(table.partitions.length, 2);
  const [p1, p2] = table.partitions;
  assert.equal([p1.start, p1.size], [2048, 40960]);
  assert.is(p2.type, '8e');
  assert.ok(p2.start >= 2048 + 40960);
  assert.is(p2.start + p2.size, (64 * 2 ** 20) / 512); // the rest of the disk
  // Re-run: the done marker skips it; forced, it sees two partitions and leaves the table alone.
  const before = readFileSync(disk).subarray(0, 512);
  assert.match(runStep('brick', env).stdout, /already done/);
  const r3 = runStep('brick', { ...env, FORCE: '1' });
  assert.is(r3.status, 0);
  assert.match(r3.stdout, /already has 2 partitions/);
  assert.ok(readFileSync(disk).subarray(0, 512).equals(before));
});

test('brick: a full disk fails loudly, naming the step to re-run', () => {
  const disk = join(t.dir, 'full.img');
  writeFileSync(disk, '');
  truncateSync(disk, 16 * 2 ** 20);
  execFileSync('sfdisk', ['--quiet', disk], { input: 'label: dos\nstart=2048, type=83\n' });
  const envFile = join(t.dir, 'cluster2.env');
  writeFileSync(envFile, "BRICK='1'\nBRICK_DEVICE='/dev/sda2'\n");
  const r = runStep('brick', { PI_IMAGE_DISK: disk, PI_IMAGE_ENV: envFile, PI_IMAGE_STATE: join(t.dir, 'done2') });
  assert.is.not(r.status, 0);
  assert.match(r.stdout, /FAILED: sfdisk --append/);
  assert.match(r.stdout, /re-run: sudo \/usr\/local\/lib\/pi-image\/firstboot\.sh brick/);
  assert.not.ok(existsSync(join(t.dir, 'done2', 'brick')));
});

test('apt hook script: re-decompresses vmlinuz only when it changed', () => {
  const fw = join(t.dir, 'firmware');
  execFileSync('mkdir', ['-p', fw]);
  const kernel1 = Buffer.from('ARM64 kernel image one '.repeat(1000));
  writeFileSync(join(fw, 'vmlinuz'), gzipSync(kernel1));
  const hook = join(PACKAGE_ROOT, 'cloud-init', 'update-vmlinux.sh');
  const env = { ...process.env, PI_IMAGE_FIRMWARE: fw };
  assert.match(execFileSync('sh', [hook], { env }).toString(), /decompressing/);
  assert.ok(readFileSync(join(fw, 'vmlinux')).equals(kernel1));
  const mtime = statSync(join(fw, 'vmlinux')).mtimeMs;
  assert.is(execFileSync('sh', [hook], { env }).toString(), '');
  assert.is(statSync(join(fw, 'vmlinux')).mtimeMs, mtime);
  const kernel2 = Buffer.from('ARM64 kernel image two '.repeat(1000));
  writeFileSync(join(fw, 'vmlinuz'), gzipSync(kernel2));
  execFileSync('sh', [hook], { env });
  assert.ok(readFileSync(join(fw, 'vmlinux')).equals(kernel2));
});

test('apt hook script: leaves a kernel that is not gzip alone (no vmlinux, no output)', () => {
  const fw = join(t.dir, 'firmware-bzimage');
  execFileSync('mkdir', ['-p', fw]);
  writeFileSync(join(fw, 'vmlinuz'), Buffer.from('MZ x86 bzImage stand-in '.repeat(100)));
  const env = { ...process.env, PI_IMAGE_FIRMWARE: fw };
  assert.is(execFileSync('sh', [join(PACKAGE_ROOT, 'cloud-init', 'update-vmlinux.sh')], { env }).toString(), '');
  assert.equal(readdirSync(fw), ['vmlinuz']);
});

test('the script parses (bash -n) and refuses unknown steps', () => {
  execFileSync('bash', ['-n', script]);
  const envFile = join(t.dir, 'empty.env');
  writeFileSync(envFile, '');
  const r = runStep('nonsense', { PI_IMAGE_ENV: envFile, PI_IMAGE_STATE: join(t.dir, 'done3') });
  assert.is.not(r.status, 0);
  assert.match(r.stdout, /unknown step nonsense/);
});

test.run();
