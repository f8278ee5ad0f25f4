// Decompression into the cache: xz (system and WASM), zip, gz and raw sources give a raw image byte-identical to
// the original (and to `xz -dc`), written sparse, with its partition table recorded; a second resolve reuses it;
// truncated or corrupt archives and unsafe zip members give clear errors and leave no cache entry; `images verify`
// compares a cached image with its source decoded again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync, readdirSync, existsSync, copyFileSync, openSync, readSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { resolveImage, type ResolveOptions, type CachedImage } from '../../lib/source/index.ts';
import { verifyCache } from '../../lib/source/verify.ts';
import { startXz } from '../../lib/source/decompress.ts';
import { CorruptImageError, InputError } from '../../lib/errors.ts';
import { makeSourceFixture, sha256File } from '../helpers/source-fixtures.ts';
import { readInWorker } from '../helpers/read-image-worker.ts';

/** The verified cached image a resolve ends with (the handle's `done`). */
const resolved = async (src: string, opts?: ResolveOptions): Promise<CachedImage> => (await resolveImage(src, opts)).done;

const dir = mkdtempSync(join(tmpdir(), 'pi-image-src-'));
const fx = makeSourceFixture(join(dir, 'fx'));
let n = 0;
const freshCache = (): string => join(dir, `cache${n++}`);
test.after(() => rmSync(dir, { recursive: true, force: true }));

function cacheImages(cache: string): string[] {
  const d = join(cache, 'images');
  return existsSync(d) ? readdirSync(d) : [];
}

for (const decoder of ['xz', 'wasm'] as const) test(`xz (${decoder} decoder): cached image is byte-identical to xz -dc output, sparse, with its partition table recorded`, async () => {
  const cache = freshCache();
  const events: string[] = [];
  const r = await resolved(fx.xz, { cacheDir: cache, xz: decoder, onProgress: (e) => e.detail && events.push(e.detail) });
  const ref = join(dir, `ref-${decoder}.img`);
  execFileSync('sh', ['-c', `xz -dc "${fx.xz}" > "${ref}"`]);
  assert.ok(readFileSync(r.path).equals(readFileSync(ref)), 'same bytes as xz -dc');
  assert.is(sha256File(r.path), fx.sha256);
  assert.is(r.sourceSha256, sha256File(fx.xz));
  assert.is(r.decoder, decoder);
  assert.ok(events.some((d) => d.includes(decoder === 'xz' ? 'via xz -dc' : 'via WASM xz decoder')), 'progress says which decoder');
  const st = statSync(r.path);
  assert.is(st.size, fx.size);
  assert.ok(st.blocks * 512 < st.size / 4, `sparse: ${st.blocks * 512} bytes allocated of ${st.size}`);
  assert.is(r.diskSignature, 0x1234abcd);
  assert.equal(r.partitions.map((p) => [p.index, p.type, p.startLba]), [[1, 0x0c, 2048], [2, 0x83, 34816]]);
  assert.is(r.cached, false);
  // The record beside it says the same.
  const rec = JSON.parse(readFileSync(r.path.replace(/\.img$/, '.json'), 'utf8'));
  assert.is(rec.sourceSha256, sha256File(fx.xz));
  assert.is(rec.size, fx.size);
  assert.is(rec.partitions.length, 2);
  // sfdisk agrees on the layout of the cached image.
  const dump = execFileSync('sfdisk', ['--dump', r.path], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  assert.match(dump, /start=\s*2048, size=\s*32768, type=c, bootable/);

  // A second resolve (and one through a file:// URL of the same file) reuses it without decompressing.
  const mtime = statSync(r.path).mtimeMs;
  const again = await resolved(fx.xz, { cacheDir: cache, xz: decoder });
  assert.is(again.cached, true);
  assert.is(again.path, r.path);
  const viaUrl = await resolved(pathToFileURL(fx.xz).href, { cacheDir: cache, xz: decoder });
  assert.is(viaUrl.cached, true);
  assert.is(statSync(r.path).mtimeMs, mtime);
});

test('one handle, cold or cached: the table, a reader that follows xz as it writes, and done for the verified file', async () => {
  const cache = freshCache();
  const cold = await resolveImage(fx.xz, { cacheDir: cache, xz: 'xz' });
  assert.is(cold.cached, false);
  assert.ok(cold.ref.growing, 'the system xz with a known size: readers follow the growing file');
  assert.is(cold.size, fx.size);
  assert.is(cold.table.diskSignature, 0x1234abcd);
  assert.equal(cold.table.partitions.map((p) => [p.index, p.type, p.startLba]), [[1, 0x0c, 2048], [2, 0x83, 34816]]);
  // Read from another thread, as the build's lanes do: a read of bytes xz has not written yet blocks its thread.
  assert.is(await readInWorker(cold.ref), fx.sha256, 'the whole image read while xz wrote it, as xz -dc gives it');
  const done = await cold.done;
  assert.is(done.path, cold.path);
  assert.equal(done.partitions, cold.table.partitions, 'the table the handle gave is the one recorded');
  assert.is(sha256File(done.path), fx.sha256);
  assert.equal(cacheImages(cache).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');

  const warm = await resolveImage(fx.xz, { cacheDir: cache, xz: 'xz' });
  assert.is(warm.cached, true);
  assert.is(warm.ref.growing, undefined);
  assert.equal(warm.table, cold.table);
  const w = warm.open();
  assert.ok(w.read(0, 4096).equals(readFileSync(fx.img).subarray(0, 4096)));
  w.close();
  assert.is((await warm.done).path, cold.path);

  // Damaged past its table, its index intact: the handle comes, reads beyond the damage fail, done names the cause.
  const c = corrupted(fx.xz, 'mid.img.xz', Math.floor(statSync(fx.xz).size / 2));
  const cache2 = freshCache();
  const bad = await resolveImage(c, { cacheDir: cache2, xz: 'xz' });
  assert.ok(bad.ref.growing);
  try {
    await readInWorker(bad.ref);
    assert.unreachable('a read past the damage fails');
  } catch (err) {
    assert.match((err as Error).message, /could not be decompressed/);
  }
  try {
    await bad.done;
    assert.unreachable('done rejects');
  } catch (err) {
    assert.instance(err, CorruptImageError);
    assert.match((err as Error).message, /mid\.img\.xz: xz data is damaged or truncated/);
  }
  expectNoEntry(cache2);
});

test('zip (single .img member), gz and a raw .img all give the same image', async () => {
  for (const src of [fx.zip, fx.gz, fx.img]) {
    const r = await resolved(src, { cacheDir: freshCache() });
    assert.is(sha256File(r.path), fx.sha256, src);
    assert.ok(statSync(r.path).blocks * 512 < fx.size / 4, `${src} sparse`);
  }
});

function expectNoEntry(cache: string): void {
  const left = cacheImages(cache);
  assert.equal(left, [], `no cache entry left: ${left.join(', ')}`);
}

async function expectFailure(src: string, check: (e: unknown) => boolean, opts: { xz?: 'wasm' | 'xz' } = {}): Promise<string> {
  const cache = freshCache();
  try {
    await resolved(src, { cacheDir: cache, ...opts });
  } catch (err) {
    assert.ok(check(err), `unexpected error: ${(err as Error).stack}`);
    expectNoEntry(cache);
    return (err as Error).message;
  }
  assert.unreachable(`${src} should have failed`);
  return '';
}

function truncated(src: string, name: string, keep: number): string {
  const out = join(dir, name);
  writeFileSync(out, readFileSync(src).subarray(0, keep));
  return out;
}

function corrupted(src: string, name: string, at: number): string {
  const out = join(dir, name);
  const b = Buffer.from(readFileSync(src));
  for (let i = 0; i < 64; i++) b[at + i] ^= 0xa5;
  writeFileSync(out, b);
  return out;
}

test('truncated or corrupt .xz: clear error naming the file, no cache entry (system xz and WASM)', async () => {
  const size = statSync(fx.xz).size;
  const t = truncated(fx.xz, 'trunc.img.xz', Math.floor(size / 2));
  let msg = await expectFailure(t, (e) => e instanceof CorruptImageError, { xz: 'xz' });
  assert.match(msg, /trunc\.img\.xz: xz data is damaged or truncated: Unexpected end of input$/, msg);
  msg = await expectFailure(t, (e) => e instanceof CorruptImageError, { xz: 'wasm' });
  assert.match(msg, /trunc\.img\.xz: xz data is damaged or truncated: Unexpected end of input \(WASM decoder\)/);
  const c = corrupted(fx.xz, 'bad.img.xz', Math.floor(size / 3));
  msg = await expectFailure(c, (e) => e instanceof CorruptImageError, { xz: 'xz' });
  assert.match(msg, /bad\.img\.xz: xz data is damaged or truncated: Compressed data is corrupt$/, msg);
  msg = await expectFailure(c, (e) => e instanceof CorruptImageError, { xz: 'wasm' });
  assert.match(msg, /bad\.img\.xz: xz data is damaged or truncated: Compressed data is corrupt \(WASM decoder\)$/, msg);
});

test('truncated or corrupt .gz: clear error, no cache entry', async () => {
  const size = statSync(fx.gz).size;
  let msg = await expectFailure(truncated(fx.gz, 'trunc.img.gz', Math.floor(size / 2)), (e) => e instanceof CorruptImageError);
  assert.match(msg, /trunc\.img\.gz: gzip data is damaged or truncated/);
  msg = await expectFailure(corrupted(fx.gz, 'bad.img.gz', Math.floor(size / 3)), (e) => e instanceof CorruptImageError);
  assert.match(msg, /bad\.img\.gz/);
});

test('truncated or corrupt .zip: clear error, no cache entry', async () => {
  const size = statSync(fx.zip).size;
  let msg = await expectFailure(truncated(fx.zip, 'trunc.zip', Math.floor(size / 2)), (e) => e instanceof CorruptImageError);
  assert.match(msg, /trunc\.zip: not a readable zip archive/);
  msg = await expectFailure(corrupted(fx.zip, 'bad.zip', Math.floor(size / 3)), (e) => e instanceof CorruptImageError);
  assert.match(msg, /bad\.zip: zip member disk\.img/);
});

test('a zip member named ../x is refused; zero or two .img members are refused', async () => {
  const zdir = join(dir, 'zips');
  execFileSync('mkdir', ['-p', join(zdir, 'a/b')]);
  copyFileSync(fx.img, join(zdir, 'x.img'));
  // `zip` stores the name as given, so run it from a subdirectory to record "../x.img".
  execFileSync('zip', ['-q', '-0', join(zdir, 'evil.zip'), '../../x.img'], { cwd: join(zdir, 'a/b') });
  assert.match(execFileSync('unzip', ['-Z1', join(zdir, 'evil.zip')], { encoding: 'utf8' }), /\.\.\/\.\.\/x\.img/);
  const msg = await expectFailure(join(zdir, 'evil.zip'), (e) => e instanceof InputError);
  assert.match(msg, /unsafe path/);
  execFileSync('zip', ['-q', '-0', join(zdir, 'none.zip'), 'x.img'], { cwd: zdir });
  writeFileSync(join(zdir, 'y.img'), 'y');
  execFileSync('zip', ['-q', '-0', join(zdir, 'two.zip'), 'x.img', 'y.img'], { cwd: zdir });
  const two = await expectFailure(join(zdir, 'two.zip'), (e) => e instanceof InputError);
  assert.match(two, /exactly one \.img member/);
});

test('a raw file that is not a disk image is refused without a cache entry', async () => {
  const junk = join(dir, 'junk.img');
  writeFileSync(junk, Buffer.alloc(8192, 1));
  const msg = await expectFailure(junk, (e) => e instanceof CorruptImageError);
  assert.match(msg, /no MBR boot signature/);
});

test('xz fed through stdin writes the image sparse, trailing zeros and data at its very end alike', async () => {
  // 512 MiB, 1 MiB of random bytes at 1 MiB, zeros after it; the second image also has 4 KiB of data at its end.
  const size = 512 * 1024 * 1024;
  for (const [name, dataAtEnd] of [['tail-zeros.img', false], ['tail-data.img', true]] as const) {
    const raw = join(dir, name);
    execFileSync('truncate', ['-s', String(size), raw]);
    execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=1M', 'count=1', 'seek=1', 'conv=notrunc', 'status=none']);
    if (dataAtEnd) execFileSync('dd', ['if=/dev/urandom', `of=${raw}`, 'bs=4096', 'count=1', `seek=${size / 4096 - 1}`, 'conv=notrunc', 'status=none']);
    const xz = execFileSync('xz', ['-T1', '-1', '-c', raw], { maxBuffer: 64 * 1024 * 1024 });
    const want = execFileSync('sha256sum', [raw], { encoding: 'utf8' }).split(' ')[0];
    const out = join(dir, `${name}.out`);
    const job = startXz(out, { name });
    job.stdin!.write(xz);
    job.finishInput();
    const r = await job.result;
    assert.is(r.size, size);
    assert.ok(r.dataBytes >= (dataAtEnd ? 1024 * 1024 + 4096 : 1024 * 1024) && r.dataBytes < 16 * 1024 * 1024, `${name}: ${r.dataBytes} data bytes`);
    assert.is(execFileSync('sha256sum', [out], { encoding: 'utf8' }).split(' ')[0], want, `${name}: bytes on disk`);
    assert.ok(statSync(out).blocks * 512 < 16 * 1024 * 1024, `${name}: sparse`);
    rmSync(out);
    rmSync(raw);
  }
});

test('images verify decodes the source again: equal is ok, a changed byte is named by its offset, no source is not checked', async () => {
  const cache = freshCache();
  const src = join(dir, 'verify-src.img.xz');
  writeFileSync(src, readFileSync(fx.xz));
  const r = await resolved(src, { cacheDir: cache });
  const first = await verifyCache({ cacheDir: cache });
  assert.equal(first.map((i) => [i.kind, i.ok]), [['image', true]]);
  assert.match(first[0].detail, /equal to verify-src\.img\.xz decoded/);

  const fd = openSync(r.path, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, 1024 * 1024 + 7); // in the FAT partition's boot sector
  writeSync(fd, Buffer.from([byte[0] ^ 0xff]), 0, 1, 1024 * 1024 + 7);
  closeSync(fd);
  const second = await verifyCache({ cacheDir: cache });
  assert.is(second[0].ok, false);
  assert.match(second[0].detail, new RegExp(`differs from its source verify-src\\.img\\.xz at byte ${1024 * 1024 + 7}`));
  assert.not.ok(existsSync(r.path.replace(/\.img$/, '.json')), 'a bad image loses its record');

  const again = await resolved(src, { cacheDir: cache });
  assert.is(again.cached, false, 'decoded again, not trusted');
  rmSync(src);
  const third = await verifyCache({ cacheDir: cache });
  assert.equal(third.map((i) => i.ok), [null]);
  assert.match(third[0].detail, /not checked: its source file is no longer here/);
  assert.ok(existsSync(again.path.replace(/\.img$/, '.json')), 'an image that could not be checked keeps its record');
});

test('xz is found on this machine (the system decoder path is what the suite exercises)', () => {
  assert.is(spawnSync('xz', ['--version']).status, 0);
});

test.run();
