// Kernel handling: gzip vs raw arm64 Image by magic, streaming decompression, and the re-decompress script run
// for real with sh/gzip/sha256sum against a fake boot directory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, createReadStream } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { isGzip, isArm64Image, kernelKind, extractKernel, decompressScript, decompressSumText, decompressSumFile, aptHookText, APT_HOOK_PATH } from '../../lib/pi/index.ts';
import { fakeArm64Image, tempDir } from '../helpers/lookalike.ts';

const dir = tempDir('pi-image-h6-kernel-');
const image = fakeArm64Image(2 * 1024 * 1024);
const packed = gzipSync(image);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('magic detection, not names', () => {
  assert.ok(isGzip(packed));
  assert.not.ok(isArm64Image(packed));
  assert.ok(isArm64Image(image));
  assert.not.ok(isGzip(image));
  assert.is(kernelKind(packed), 'gzip');
  assert.is(kernelKind(image), 'arm64-image');
  assert.is(kernelKind(Buffer.from('MZ not a kernel')), 'unknown');
});

test('extractKernel streams gzip → Image from a file stream (small chunks), hashes both sides', async () => {
  const f = join(dir, 'vmlinuz');
  writeFileSync(f, packed);
  const chunks: Buffer[] = [];
  const r = await extractKernel(createReadStream(f, { highWaterMark: 4093 }), (c) => void chunks.push(Buffer.from(c)), f);
  assert.is(r.kind, 'gzip');
  assert.is(r.bytesIn, packed.length);
  assert.is(r.bytesOut, image.length);
  assert.is(r.sha256Out, sha(image));
  assert.is(r.sha256In, sha(packed));
  assert.ok(r.arm64);
  assert.ok(Buffer.concat(chunks).equals(image));
});

test('extractKernel keeps a raw Image as it is', async () => {
  const out: Buffer[] = [];
  const r = await extractKernel([image.subarray(0, 10), image.subarray(10)], (c) => void out.push(Buffer.from(c)));
  assert.is(r.kind, 'arm64-image');
  assert.ok(Buffer.concat(out).equals(image));
});

test('a damaged gzip kernel is a typed error naming the file; empty input too', async () => {
  const bad = Buffer.from(packed);
  bad.fill(0x55, 1000, 5000);
  try {
    await extractKernel([bad], () => {}, 'system-boot:/vmlinuz');
    assert.unreachable('should throw');
  } catch (e) {
    assert.is((e as Error).name, 'CorruptImageError');
    assert.match((e as Error).message, /system-boot:\/vmlinuz: gzip stream is damaged/);
  }
  try {
    await extractKernel([], () => {}, 'empty');
    assert.unreachable('should throw');
  } catch (e) {
    assert.match((e as Error).message, /empty: kernel file is empty/);
  }
});

test('re-decompress script: extracts, skips when unchanged, re-extracts after an update, keeps .bak', () => {
  const boot = join(dir, 'firmware');
  mkdirSync(boot, { recursive: true });
  const script = join(boot, 'auto_decompress_kernel');
  writeFileSync(script, decompressScript({ packed: 'vmlinuz', kernel: 'vmlinux' }));
  writeFileSync(join(boot, 'vmlinuz'), packed);
  const run = () => execFileSync('sh', [script], { env: { ...process.env, BOOT: boot }, encoding: 'utf8' });
  assert.match(run(), /re-created/);
  assert.is(sha(readFileSync(join(boot, 'vmlinux'))), sha(image));
  assert.is(readFileSync(join(boot, decompressSumFile())).toString(), decompressSumText(packed));
  assert.is(run(), '', 'nothing to do the second time');
  const image2 = fakeArm64Image(1024 * 1024, 'linux-5.3.0-1015-raspi2');
  writeFileSync(join(boot, 'vmlinuz'), gzipSync(image2));
  assert.match(run(), /re-created/);
  assert.is(sha(readFileSync(join(boot, 'vmlinux'))), sha(image2));
  assert.is(sha(readFileSync(join(boot, 'vmlinux.bak'))), sha(image));
  // A raw Image as "vmlinuz" (a later release) is copied, not gunzipped.
  writeFileSync(join(boot, 'vmlinuz'), image);
  run();
  assert.is(sha(readFileSync(join(boot, 'vmlinux'))), sha(image));
  // Written at build time, the sum file makes the first run a no-op.
  writeFileSync(join(boot, decompressSumFile()), decompressSumText(image));
  assert.is(run(), '');
});

test('apt hook text: a DPkg::Post-Invoke that runs the script', () => {
  const t = aptHookText();
  assert.ok(APT_HOOK_PATH.startsWith('/etc/apt/apt.conf.d/'));
  assert.match(t, /^\/\/ /);
  assert.match(t, /DPkg::Post-Invoke \{ ".*\/boot\/firmware\/auto_decompress_kernel.*"; \};\n$/);
  assert.ok(existsSync('/bin/sh'));
  // apt itself parses it (apt is on every Debian host the suite runs on).
  writeFileSync(join(dir, 'hook.conf'), t);
  const dump = execFileSync('apt-config', ['-c', join(dir, 'hook.conf'), 'dump'], { encoding: 'utf8' });
  assert.match(dump, /DPkg::Post-Invoke:: "if \[ -x \/bin\/sh \] && \[ -f \/boot\/firmware\/auto_decompress_kernel \]; then/);
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
