// Downloads against a real HTTP server on 127.0.0.1: resume after a dropped or stalled connection, retry after 503,
// follow redirects, restart when Range is ignored, and refuse (keeping nothing) on a checksum mismatch or a 404;
// damaged .xz decoded while downloading fails cleanly; an interrupted .xz fetch resumes in a later call.
// Catalog entries: SHA256SUMS verification, mirror rewriting, URL fallback, reuse without network.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, existsSync, readdirSync, mkdirSync, statSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { download, resolveImage, type ResolveOptions, type CachedImage, applyMirror, mirrorUrls, listCatalog, releaseFacts, Cache, DownloadError } from '../../lib/source/index.ts';
import { NotFoundError, VerifyError, InputError, CorruptImageError } from '../../lib/errors.ts';
import { startServer, type TestServer } from '../helpers/source-server.ts';
import { makeSourceFixture, sha256File } from '../helpers/source-fixtures.ts';

/** The verified cached image a resolve ends with (the handle's `done`). */
const resolved = async (src: string, opts?: ResolveOptions): Promise<CachedImage> => (await resolveImage(src, opts)).done;

const dir = mkdtempSync(join(tmpdir(), 'pi-image-dl-'));
const blob = join(dir, 'blob.bin');
writeFileSync(blob, randomBytes(3 * 1024 * 1024 + 123));
const blobSha = sha256File(blob);
const fx = makeSourceFixture(join(dir, 'fx'));
let server: TestServer;
let n = 0;
const fresh = (): string => join(dir, `c${n++}`);
const fast = { retries: 3, backoffMs: 10, idleTimeoutMs: 5000, overlapAfterMs: 0 };

test.before(async () => {
  server = await startServer();
});
test.after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
test.before.each(() => {
  server.routes.clear();
  server.served.clear();
  server.requests.length = 0;
});

const dest = (): string => {
  const d = fresh();
  mkdirSync(d, { recursive: true });
  return join(d, 'blob.bin');
};

test('a dropped connection resumes with Range and fetches each byte once', async () => {
  server.routes.set('/blob', { file: blob, dropAfter: 1_000_000, dropTimes: 2 });
  const out = dest();
  const r = await download(`${server.url}/blob`, { dest: out, expectedSha256: blobSha, ...fast });
  assert.is(r.sha256, blobSha);
  assert.is(sha256File(out), blobSha);
  assert.equal(server.requests.map((q) => q.range), [undefined, 'bytes=1000000-', 'bytes=2000000-']);
  assert.is(server.served.get('/blob'), statSync(blob).size, 'no byte sent twice');
  assert.not.ok(existsSync(`${out}.partial`));
  assert.ok(existsSync(`${out}.json`));
});

test('503 once, then success; redirects are followed', async () => {
  server.routes.set('/busy', { file: blob, fail503: 1 });
  const r = await download(`${server.url}/busy`, { dest: dest(), expectedSha256: blobSha, ...fast });
  assert.is(r.sha256, blobSha);
  assert.is(server.requests.length, 2);
  server.routes.set('/old', { redirect: '/new' });
  server.routes.set('/new', { file: blob });
  const r2 = await download(`${server.url}/old`, { dest: dest(), expectedSha256: blobSha, ...fast });
  assert.is(r2.sha256, blobSha);
});

test('a server that ignores Range makes the download restart from zero, still verified', async () => {
  server.routes.set('/norange', { file: blob, dropAfter: 500_000, noRange: true });
  const r = await download(`${server.url}/norange`, { dest: dest(), expectedSha256: blobSha, ...fast });
  assert.is(r.sha256, blobSha);
});

test('a stalled connection times out and resumes with Range', async () => {
  server.routes.set('/stall', { file: blob, dropAfter: 700_000, stall: true });
  const progress: string[] = [];
  const r = await download(`${server.url}/stall`, { dest: dest(), expectedSha256: blobSha, ...fast, idleTimeoutMs: 300, onProgress: (e) => e.detail && progress.push(e.detail) });
  assert.is(r.sha256, blobSha);
  assert.equal(server.requests.map((q) => q.range), [undefined, 'bytes=700000-']);
  assert.ok(progress.some((d) => d.includes('no data for 0.3 s')), 'the retry says why');
});

test('a server that never sends gives up with a timeout error after the retries', async () => {
  server.routes.set('/dead', { file: blob, dropAfter: 0, dropTimes: 99, stall: true });
  try {
    await download(`${server.url}/dead`, { dest: dest(), retries: 1, backoffMs: 10, idleTimeoutMs: 200 });
    assert.unreachable('should fail');
  } catch (err) {
    assert.instance(err, DownloadError);
    assert.match((err as Error).message, `${server.url}/dead: no data for 0.2 s`);
  }
  assert.is(server.requests.length, 2);
});

test('checksum mismatch: error names the URL and both hashes; nothing is kept', async () => {
  server.routes.set('/blob', { file: blob });
  const out = dest();
  const wrong = 'ab'.repeat(32);
  try {
    await download(`${server.url}/blob`, { dest: out, expectedSha256: wrong, ...fast });
    assert.unreachable('should fail');
  } catch (err) {
    assert.instance(err, VerifyError);
    const m = (err as Error).message;
    assert.ok(m.includes(`${server.url}/blob`) && m.includes(wrong) && m.includes(blobSha), m);
  }
  assert.not.ok(existsSync(out));
  assert.not.ok(existsSync(`${out}.partial`));
  assert.not.ok(existsSync(`${out}.json`));
});

test('404 is a NotFoundError naming the URL, not retried', async () => {
  try {
    await download(`${server.url}/missing.img.xz`, { dest: dest(), ...fast });
    assert.unreachable('should fail');
  } catch (err) {
    assert.instance(err, NotFoundError);
    assert.match((err as Error).message, `${server.url}/missing.img.xz`);
  }
  assert.is(server.requests.length, 1);
});

/** What a failed download left beside `out`: nothing, unless a resume can use it. */
const leftBeside = (out: string): string[] => readdirSync(join(out, '..'));

/** The error of a download expected to fail (and the requests it made). */
async function failure(path: string, out = dest(), opts: Partial<Parameters<typeof download>[1]> = {}): Promise<DownloadError | NotFoundError> {
  try {
    await download(`${server.url}${path}`, { dest: out, ...fast, ...opts });
  } catch (err) {
    return err as DownloadError;
  }
  assert.unreachable(`${path} should fail`);
  throw new Error('unreachable');
}

test('persistent 500s: after the retries no .partial is left and the message does not offer a resume', async () => {
  server.routes.set('/broken', { status: 500 });
  const out = dest();
  const err = await failure('/broken', out);
  assert.match(err.message, /HTTP 500/);
  assert.is(server.requests.length, 4);
  assert.equal(leftBeside(out), [], 'no 0-byte .partial or .partial.json');
  assert.not.match(String((err as DownloadError).hint), /resume/);
});

test('a redirect loop is permanent: no retries, named as a loop, nothing left', async () => {
  server.routes.set('/loop', { redirect: '/loop' });
  const out = dest();
  const err = await failure('/loop', out);
  assert.instance(err, DownloadError);
  assert.match(err.message, new RegExp(`^${server.url}/loop: more than 10 redirects \\(a redirect loop\\?\\)`));
  assert.is(server.requests.length, 11, 'one attempt: the request and its 10 redirects');
  assert.equal(leftBeside(out), []);
  assert.not.match(String((err as DownloadError).hint), /resume/);
});

test('a server that answers with Content-Encoding: gzip is refused at once, nothing left', async () => {
  server.routes.set('/gz', { file: blob, headers: { 'Content-Encoding': 'gzip' } });
  const out = dest();
  const err = await failure('/gz', out);
  assert.match(err.message, /Content-Encoding: gzip/);
  assert.is(server.requests.length, 1, 'not retried');
  assert.equal(leftBeside(out), []);
});

test('a short body from a server that ignores Range: no .partial kept, no resume offered', async () => {
  server.routes.set('/short', { file: blob, noRange: true, dropAfter: 500_000, dropTimes: 99 });
  const out = dest();
  const err = await failure('/short', out);
  assert.match(err.message, /short: connection (lost|closed) after 500000 of \d+ bytes/, err.message);
  assert.ok(server.requests.slice(1).every((q) => q.range === 'bytes=500000-'), 'it did ask for the rest');
  assert.equal(leftBeside(out), [], 'bytes a resume cannot use are not kept');
  assert.not.match(String((err as DownloadError).hint), /resume/);
});

test('bytes a resume can use are kept, and only then does the message say to run again', async () => {
  server.routes.set('/flaky', { file: blob, dropAfter: 1_000_000 });
  const out = dest();
  const err = await failure('/flaky', out, {
    onProgress: (e) => e.detail?.includes('retrying') && server.routes.set('/flaky', { status: 503 }),
  });
  assert.match(err.message, /HTTP 503/);
  assert.equal(leftBeside(out).sort(), ['blob.bin.partial', 'blob.bin.partial.json']);
  assert.is(statSync(`${out}.partial`).size, 1_000_000);
  assert.match(String((err as DownloadError).hint), /1000000 bytes are kept in .*blob\.bin\.partial: run the same command again to resume/);
});

test('an HTML page where the file was expected is refused, named by its URL (by Content-Type or by its first bytes)', async () => {
  const page = join(dir, 'page.html');
  writeFileSync(page, '<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>\n');
  server.routes.set('/typed.img.xz', { file: page, headers: { 'Content-Type': 'text/html; charset=utf-8' } });
  server.routes.set('/untyped.img.xz', { file: page });
  for (const path of ['/typed.img.xz', '/untyped.img.xz']) {
    const out = dest();
    const err = await failure(path, out);
    assert.match(err.message, new RegExp(`^${server.url}${path.replace('.', '\\.')}: the server answered with an HTML page, not the file`));
    assert.equal(leftBeside(out), []);
  }
});

test('no network: an unresolvable host and a port with nothing listening fail at once with one line saying so', async () => {
  const closed = await startServer();
  const port = new URL(closed.url).port;
  await closed.close(); // a port that was just free: nothing listens there now
  for (const [url, words] of [
    ['http://nonexistent.invalid/disk.img.xz', /^http:\/\/nonexistent\.invalid\/disk\.img\.xz: no network or DNS failure: cannot resolve host nonexistent\.invalid \(getaddrinfo (ENOTFOUND|EAI_AGAIN)\)$/],
    [`http://127.0.0.1:${port}/disk.img.xz`, new RegExp(`^http://127\\.0\\.0\\.1:${port}/disk\\.img\\.xz: nothing answers at 127\\.0\\.0\\.1:${port} \\(connection refused\\)$`)],
  ] as const) {
    const out = dest();
    const t0 = Date.now();
    let err: DownloadError | undefined;
    try {
      await download(url, { dest: out, retries: 3, backoffMs: 2000 });
    } catch (e) {
      err = e as DownloadError;
    }
    assert.instance(err, DownloadError);
    assert.match(err!.message, words);
    assert.ok(err!.unreachable, 'marked as unreachable');
    assert.ok(Date.now() - t0 < 2000, 'no retry with backoff');
    assert.equal(leftBeside(out), []);
  }
});

test('mirror rewriting keeps the path under the mirror', () => {
  assert.is(applyMirror('http://cdimage.ubuntu.com/releases/24.04/release/x.img.xz', 'http://10.0.0.5:8080/ubuntu/'), 'http://10.0.0.5:8080/ubuntu/releases/24.04/release/x.img.xz');
  assert.is(applyMirror('http://old-releases.ubuntu.com/releases/19.10.1/x', 'file:///srv/m'), 'file:///srv/m/releases/19.10.1/x');
  assert.equal(mirrorUrls(['http://a/x/f', 'http://b/x/f', 'http://b/y/f'], 'http://m'), ['http://m/x/f', 'http://m/y/f']);
});

/** A catalog directory with one entry for the fixture image. */
function catalog(fields: Record<string, unknown>): string {
  const c = fresh();
  mkdirSync(c, { recursive: true });
  const entry = {
    id: 'test-image',
    title: 'test',
    release: '1.0',
    arch: 'arm64',
    file: 'disk.img.xz',
    compression: 'xz',
    boot: { style: 'cmdline-txt' },
    ...fields,
  };
  writeFileSync(join(c, 'test.json'), JSON.stringify(entry));
  return c;
}

test('catalog entry: verified against the published SHA256SUMS through a mirror; reused with no network', async () => {
  const xzSha = sha256File(fx.xz);
  const sums = join(dir, 'SHA256SUMS');
  writeFileSync(sums, `${'0'.repeat(64)} *other.img.xz\n${xzSha} *disk.img.xz\n`);
  // Dropped once mid-way: the download resumes and the xz fed while downloading carries on with the same bytes.
  server.routes.set('/releases/1.0/release/disk.img.xz', { file: fx.xz, dropAfter: Math.floor(statSync(fx.xz).size / 2) });
  server.routes.set('/releases/1.0/release/SHA256SUMS', { file: sums });
  const cat = catalog({ urls: ['http://cdimage.example.invalid/releases/1.0/release/disk.img.xz'], sha256sumsUrl: 'SHA256SUMS' });
  const cache = fresh();
  const r = await resolved('test-image', { cacheDir: cache, catalogDir: cat, mirror: server.url, ...fast });
  assert.is(sha256File(r.path), fx.sha256);
  assert.is(r.sourceSha256, xzSha);
  assert.is(r.entry?.id, 'test-image');
  assert.is(r.cached, false);
  assert.is(r.decoder, 'xz');
  assert.equal(server.requests.filter((q) => q.path.endsWith('.xz')).map((q) => q.range), [undefined, `bytes=${Math.floor(statSync(fx.xz).size / 2)}-`]);
  // The image xz wrote while downloading: the same bytes as `xz -dc` of the file, and sparse.
  assert.ok(readFileSync(r.path).equals(execFileSync('xz', ['-dc', fx.xz], { maxBuffer: 2 * fx.size })), 'same bytes as xz -dc');
  const st = statSync(r.path);
  assert.is(st.size, fx.size);
  assert.ok(st.blocks * 512 < st.size / 4, `sparse: ${st.blocks * 512} bytes allocated of ${st.size}`);
  server.requests.length = 0;
  const again = await resolved('test-image', { cacheDir: cache, catalogDir: cat, mirror: server.url, ...fast });
  assert.is(again.cached, true);
  assert.is(server.requests.length, 0, 'no network on the second resolve');
});

test('catalog entry: a 404 on the first URL falls back to the next; a SHA256SUMS mismatch keeps nothing', async () => {
  const xzSha = sha256File(fx.xz);
  server.routes.set('/b/disk.img.xz', { file: fx.xz });
  const cat = catalog({ urls: [`${server.url}/a/disk.img.xz`, `${server.url}/b/disk.img.xz`], sha256: xzSha });
  const r = await resolved('test-image', { cacheDir: fresh(), catalogDir: cat, ...fast });
  assert.is(sha256File(r.path), fx.sha256);
  assert.ok(server.requests.some((q) => q.path === '/a/disk.img.xz'));

  const bad = join(dir, 'BADSUMS');
  writeFileSync(bad, `${'1'.repeat(64)} *disk.img.xz\n`);
  server.routes.set('/b/SHA256SUMS', { file: bad });
  const cat2 = catalog({ urls: [`${server.url}/b/disk.img.xz`], sha256sumsUrl: 'SHA256SUMS' });
  const cache = fresh();
  try {
    await resolved('test-image', { cacheDir: cache, catalogDir: cat2, ...fast });
    assert.unreachable('should fail');
  } catch (err) {
    assert.instance(err, VerifyError);
    assert.ok((err as Error).message.includes('1'.repeat(64)) && (err as Error).message.includes(xzSha));
  }
  const c = new Cache(cache);
  assert.equal(c.listDownloads(), []);
  assert.equal(c.listImages(), []);
  assert.equal(readdirSync(c.downloads), []);
  assert.equal(readdirSync(c.images), [], 'the image decompressed while downloading was discarded');
});

test('an http URL source is downloaded, decompressed and then reused', async () => {
  server.routes.set('/img/disk.img.gz', { file: fx.gz });
  const cache = fresh();
  const r = await resolved(`${server.url}/img/disk.img.gz`, { cacheDir: cache, ...fast });
  assert.is(sha256File(r.path), fx.sha256);
  assert.is(r.decoder, 'zlib');
  server.requests.length = 0;
  assert.is((await resolved(`${server.url}/img/disk.img.gz`, { cacheDir: cache, ...fast })).cached, true);
  assert.is(server.requests.length, 0);
});

/** A 12 MiB disk image (sfdisk MBR, 2 MiB of hex text, zeros elsewhere) as an .xz of ~1 MiB that decodes slower
 * than 127.0.0.1 delivers it (so the pipe into xz is full when xz stops on bad data). */
function textImageXz(): { xz: string; img: string } {
  const img = join(dir, 'text.img');
  if (!existsSync(`${img}.xz`)) {
    writeFileSync(img, Buffer.alloc(0));
    execFileSync('truncate', ['-s', '12M', img]);
    execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', img], { input: 'label: dos\n2048,,83\n', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    execFileSync('dd', ['of=' + img, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none'], { input: randomBytes(1024 * 1024).toString('hex') });
    execFileSync('xz', ['-T1', '-1', '-k', '-f', img]);
  }
  return { xz: `${img}.xz`, img };
}

test('an .xz is decoded while it downloads only when the download is slow: xz then follows the file as it grows', async () => {
  const { xz, img } = textImageXz();
  const want = sha256File(img);
  for (const [path, paced] of [['/paced/text.img.xz', true], ['/quick/text.img.xz', false]] as const) {
    server.routes.set(path, paced ? { file: xz, bytesPerSecond: 400_000 } : { file: xz });
    const events: { phase: string; done: number; detail?: string }[] = [];
    const r = await resolved(`${server.url}${path}`, { cacheDir: fresh(), ...fast, overlapAfterMs: 500, onProgress: (e) => events.push(e) });
    assert.is(sha256File(r.path), want, path);
    const lastDownload = events.findIndex((e) => e.phase === 'download' && e.done === statSync(xz).size);
    const during = events.findIndex((e) => e.phase === 'decompress' && e.done > 0 && e.detail?.includes('while downloading'));
    if (paced) assert.ok(during >= 0 && during < lastDownload, `decoded while downloading: decompress event ${during}, download done at ${lastDownload}`);
    else {
      assert.is(during, -1, 'a download faster than the overlap threshold is decoded from the file after it');
      assert.ok(events.some((e) => e.phase === 'decompress' && e.detail?.endsWith('text.img.xz via xz -dc')), 'decoded from the file');
    }
  }
});

for (const decoder of ['xz', 'wasm'] as const) test(`corrupt or truncated .xz over HTTP (${decoder === 'xz' ? 'system xz, decoded while downloading' : 'WASM decoder, after the download'}): clear error, no cache entry, no download kept`, async () => {
  const good = readFileSync(textImageXz().xz);
  const bad = Buffer.from(good);
  for (let i = 0; i < 64; i++) bad[Math.floor(good.length * 0.6) + i] ^= 0xa5;
  writeFileSync(join(dir, 'bad.img.xz'), bad);
  writeFileSync(join(dir, 'cut.img.xz'), good.subarray(0, Math.floor(good.length * 0.7)));
  for (const [name, words] of [['bad.img.xz', /bad\.img\.xz: xz data is damaged or truncated: Compressed data is corrupt/], ['cut.img.xz', /cut\.img\.xz: xz data is damaged or truncated: Unexpected end of input/]] as const) {
    server.routes.set(`/${name}`, { file: join(dir, name) });
    const cache = fresh();
    try {
      // A hang here was a real bug (waiting for a pipe to drain after xz had exited): fail instead of hanging.
      let timer: NodeJS.Timeout | undefined;
      const hang = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${name}: resolveImage hung`)), 60_000)));
      await Promise.race([resolved(`${server.url}/${name}`, { cacheDir: cache, ...fast, xz: decoder }), hang]).finally(() => clearTimeout(timer));
      assert.unreachable('should fail');
    } catch (err) {
      assert.instance(err, CorruptImageError, (err as Error).stack);
      assert.match((err as Error).message, words, (err as Error).message);
    }
    const c = new Cache(cache);
    assert.equal(readdirSync(c.images), [], `${name}: no image, no temp file`);
    assert.equal(readdirSync(c.downloads), [], `${name}: unverified undecodable download not kept`);
  }
});

test('an .xz fetch interrupted in one call resumes in the next: only the missing bytes, decompressed from the file', async () => {
  const { xz, img } = textImageXz();
  const xzSize = statSync(xz).size;
  server.routes.set('/slow/text.img.xz', { file: xz, bytesPerSecond: 1_000_000 });
  const cache = fresh();
  const url = `${server.url}/slow/text.img.xz`;
  const ctl = new AbortController();
  const downloads = join(cache, 'downloads');
  const partial = (): number => {
    const f = existsSync(downloads) ? readdirSync(downloads).find((x) => x.endsWith('.partial')) : undefined;
    return f ? statSync(join(downloads, f)).size : 0;
  };
  const first = resolved(url, { cacheDir: cache, signal: ctl.signal, ...fast });
  const t0 = Date.now();
  while (partial() < xzSize / 4 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
  ctl.abort();
  await first.then(
    () => assert.unreachable('aborted'),
    () => undefined,
  );
  const had = partial();
  assert.ok(had >= xzSize / 4 && had < xzSize, `partial has ${had} of ${xzSize} bytes`);
  assert.equal(readdirSync(join(cache, 'images')), [], 'the image fed while downloading was discarded');
  server.routes.set('/slow/text.img.xz', { file: xz });
  server.served.clear();
  server.requests.length = 0;
  const r = await resolved(url, { cacheDir: cache, ...fast });
  assert.equal(server.requests.map((q) => q.range), [`bytes=${had}-`]);
  assert.is(server.requests[0].sent, xzSize - had, 'only the missing bytes (counted per request: the aborted one may still be sending)');
  assert.is(sha256File(r.path), sha256File(img));
  assert.is(r.decoder, 'xz');
  const st = statSync(r.path);
  assert.ok(st.blocks * 512 < st.size / 4, `sparse: ${st.blocks * 512} of ${st.size}`);
});

test('the shipped catalog: four entries, 19.10.1 the default with old-releases first', () => {
  const entries = listCatalog();
  assert.equal(entries.map((e) => e.id), ['ubuntu-19.10.1-raspi', 'ubuntu-20.04.5-raspi', 'ubuntu-22.04.5-raspi', 'ubuntu-24.04.3-raspi']);
  const d = entries.find((e) => e.default)!;
  assert.is(d.id, 'ubuntu-19.10.1-raspi');
  assert.match(d.urls[0], /^http:\/\/old-releases\.ubuntu\.com\//);
  assert.match(d.urls.at(-1)!, /^http:\/\/cdimage\.ubuntu\.com\//);
  assert.is(d.boot.style, 'uboot-nobtcmd');
  assert.is(d.boot.decompressedKernel, 'vmlinux');
  assert.is(d.boot.model, 'pi4');
  assert.is(entries.find((e) => e.id === 'ubuntu-24.04.3-raspi')!.sha256, '9bb1799cee8965e6df0234c1c879dd35be1d87afe39b84951f278b6bd0433e56');
});

test('release facts are catalog data (images/releases/ubuntu.yaml): end of life and legacy iptables by codename', () => {
  assert.equal(releaseFacts('eoan'), { endOfLife: true, legacyIptables: true });
  assert.equal(releaseFacts('groovy'), { endOfLife: true, legacyIptables: false });
  assert.equal(releaseFacts('noble'), { endOfLife: false, legacyIptables: false });
});

test('a bad catalog file: the error names the file and the field', () => {
  const c = catalog({ urls: ['not a url'], sha256: 'xyz' });
  try {
    listCatalog(c);
    assert.unreachable('should fail');
  } catch (err) {
    assert.instance(err, InputError);
    const m = (err as Error).message;
    assert.ok(m.includes(join(c, 'test.json')) && m.includes('field urls.0') && m.includes('field sha256'), m);
  }
});

test.run();

