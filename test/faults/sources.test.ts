// Fault cases for image sources, run through the CLI as a user runs it: `images fetch …` and `build --image …` of
// the compiled package (tsc into test/.tmp, as npm's prepare builds it: the WASM decoder once failed only there),
// each with its own --cache and --out. Every case checks: exit code 1, at most 3 lines on stderr, no stack trace,
// the message names the file or URL (and what is wrong), and nothing is left: no output, no final-named file, no
// cache entry, no temp file, no .partial unless a resume can use it. Fixtures are made by the real tools
// (sfdisk, mkfs.vfat, mkfs.ext4, xz, gzip, zip, mshowfat) and served by a real HTTP server on 127.0.0.1.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, closeSync, copyFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { makeSourceFixture, sha256File } from '../helpers/source-fixtures.ts';
import { startServer, type TestServer } from '../helpers/source-server.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = join(root, 'test', '.tmp');
mkdirSync(work, { recursive: true });
const dir = mkdtempSync(join(work, 'faults-sources-'));
const dist = join(dir, 'dist');
const fx = makeSourceFixture(join(dir, 'fx'));
/** A 12 MiB image (sfdisk MBR, 2 MiB of hex text) whose .xz is about 1 MiB: big enough to pace a download. */
const slow = ((): { xz: string; img: string } => {
  const img = join(dir, 'slow.img');
  execFileSync('truncate', ['-s', '12M', img]);
  execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', img], { input: 'label: dos\n2048,,83\n', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
  execFileSync('dd', [`of=${img}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none'], { input: randomBytes(1 << 20).toString('hex') });
  execFileSync('xz', ['-T1', '-1', '-k', '-f', img]);
  return { xz: `${img}.xz`, img };
})();
let server: TestServer;
let cases = 0;

test.before(async () => {
  // The CLI as installed: bundled as `npm run build` bundles it (a private copy), run by plain node.
  execFileSync(process.execPath, [join(root, 'scripts/bundle.mjs'), '--outdir', dist], { cwd: root, stdio: 'inherit' });
  server = await startServer();
});
test.after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`  sources fault cases that came out clean: ${cases}`);
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  cache: string;
  out: string;
}

let n = 0;
/** Run the compiled CLI with a fresh (or given) cache and output directory, cwd in a scratch directory. */
function cli(args: string[], opts: { cache?: string; env?: Record<string, string>; onStart?: (pid: number) => void } = {}): Promise<Run> {
  const cwd = join(dir, `run${n++}`);
  mkdirSync(cwd, { recursive: true });
  const cache = opts.cache ?? join(cwd, 'cache');
  const out = join(cwd, 'out');
  const full = args[0] === 'build' ? [...args, '--cache', cache, '--out', out] : [...args, '--cache', cache];
  const child = spawn(process.execPath, [join(dist, 'pi-image.js'), ...full], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PI_IMAGE_BACKOFF_MS: '20', NO_COLOR: '1', ...opts.env },
  });
  opts.onStart?.(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr, cache, out })));
}

/** Every file under `d` (relative paths), or [] when it does not exist. */
function files(d: string): string[] {
  if (!existsSync(d)) return [];
  return (readdirSync(d, { recursive: true }) as string[]).filter((f) => statSync(join(d, f)).isFile()).sort();
}

/** Progress lines as the CLI prints them without a terminal (`<phase> <what>: <bytes>…`), before an error. */
const PROGRESS = /^(hash|download|decompress) .+: \d+(\.\d+)? (B|KiB|MiB|GiB)( of |, |$)|^build \S+ .+: \d+\/\d+$/;
/** The one warning the built-in profile always gets (its user has no SSH key), printed before any work starts. */
const NO_LOGIN = /^warning: no user can log in to the nodes: users\[0\]\.sshKeys/;

/**
 * The checks every fault case makes; `keep` lists files allowed to stay in the cache (a resumable .partial). The
 * error is at most 3 lines (the message, its hint); before it only progress lines, which a terminal overwrites.
 */
function clean(r: Run, names: RegExp, keep: RegExp[] = []): void {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  const first = lines.findIndex((l) => l.startsWith('pi-image: '));
  const where = `\n--- stderr:\n${r.stderr}`;
  assert.is(r.code, 1, `exit code${where}`);
  assert.ok(first >= 0, `an error line${where}`);
  assert.ok(lines.length - first <= 3, `the error is at most 3 lines, got ${lines.length - first}${where}`);
  assert.ok(lines.slice(0, first).every((l) => PROGRESS.test(l) || NO_LOGIN.test(l)), `only progress lines before it${where}`);
  assert.not.match(r.stderr, /^\s+at .+:\d+:\d+\)?$/m, `no stack trace${where}`);
  assert.match(lines[first], names, `the error line names what and where${where}`);
  const left = files(r.cache).filter((f) => f !== 'sources.json' && !keep.some((k) => k.test(f)));
  assert.equal(left, [], `nothing left in the cache${where}`);
  assert.equal(files(r.out), [], 'no output');
  cases++;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function variant(name: string, bytes: Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}
const truncated = (src: string, name: string): string => variant(name, readFileSync(src).subarray(0, Math.floor(statSync(src).size / 2)));
function corrupted(src: string, name: string): string {
  const b = Buffer.from(readFileSync(src));
  const at = Math.floor(b.length / 3);
  for (let i = 0; i < 64; i++) b[at + i] ^= 0xa5;
  return variant(name, b);
}

// ---- truncated, corrupt and wrong-format files --------------------------------------------------------------

for (const decoder of ['xz', 'wasm'] as const) {
  test(`.xz truncated or corrupt (${decoder} decoder): refused naming the file`, async () => {
    const t = truncated(fx.xz, `trunc-${decoder}.img.xz`);
    clean(await cli(['images', 'fetch', t, '--xz', decoder]), new RegExp(`${esc(t)}: xz data is damaged or truncated: Unexpected end of input`));
    const c = corrupted(fx.xz, `bad-${decoder}.img.xz`);
    clean(await cli(['images', 'fetch', c, '--xz', decoder]), new RegExp(`${esc(c)}: xz data is damaged or truncated: Compressed data is corrupt`));
  });
  test(`a good .xz through the ${decoder} decoder enters the cache (the control case)`, async () => {
    const r = await cli(['images', 'fetch', fx.xz, '--xz', decoder, '--json']);
    assert.is(r.code, 0, r.stderr);
    const result = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.event === 'result');
    assert.is(result.decoder, decoder);
    assert.is(sha256File(result.path), fx.sha256);
  });
}

test('.gz and .zip truncated or corrupt: refused naming the file', async () => {
  const tg = truncated(fx.gz, 'trunc.img.gz');
  clean(await cli(['images', 'fetch', tg]), new RegExp(`${esc(tg)}: gzip data is damaged or truncated`));
  const cg = corrupted(fx.gz, 'bad.img.gz');
  clean(await cli(['images', 'fetch', cg]), new RegExp(`${esc(cg)}: gzip data is damaged`));
  const tz = truncated(fx.zip, 'trunc.zip');
  clean(await cli(['images', 'fetch', tz]), new RegExp(`${esc(tz)}: not a readable zip archive`));
  const cz = corrupted(fx.zip, 'bad.zip');
  clean(await cli(['images', 'fetch', cz]), new RegExp(`${esc(cz)}: zip member disk\\.img`));
});

test('wrong format: a text file named .img.xz, and an .xz of a text file', async () => {
  const text = variant('notes.img.xz', Buffer.from('these are not the bytes you are looking for\n'.repeat(100)));
  clean(await cli(['images', 'fetch', text]), new RegExp(`${esc(text)}: no MBR boot signature`));
  const xzText = join(dir, 'text.img.xz');
  writeFileSync(xzText, execFileSync('xz', ['-c'], { input: 'just text\n'.repeat(1000) }));
  for (const decoder of ['xz', 'wasm']) clean(await cli(['images', 'fetch', xzText, '--xz', decoder]), new RegExp(`${esc(xzText)}: .*(shorter than one 512-byte sector|no MBR boot signature)`));
});

test('build --image with a truncated .xz: nothing in --out, nothing in the cache', async () => {
  const t = truncated(fx.xz, 'build-trunc.img.xz');
  clean(await cli(['build', 'node1', '--image', t]), new RegExp(`${esc(t)}: xz data is damaged or truncated`));
});

// ---- images that decode but fail validation (issue 12 point 7) ---------------------------------------------

/** A copy of the fixture image with `patch` applied (byte offsets in the image). */
function hostile(name: string, patch: (fd: number) => void): string {
  const p = join(dir, name);
  copyFileSync(fx.img, p);
  const fd = openSync(p, 'r+');
  try {
    patch(fd);
  } finally {
    closeSync(fd);
  }
  return p;
}
const P1 = 2048 * 512; // the FAT16 partition of the fixture
const P2 = 34816 * 512; // its ext4 partition
const u16 = (v: number): Buffer => Buffer.from([v & 0xff, v >> 8]);
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
/** The clusters of /vmlinuz as mtools' mshowfat prints them ("<first-last>"), and the FAT's layout. */
function vmlinuzClusters(): { first: number; last: number; fats: number[] } {
  const shown = execFileSync('mshowfat', ['-i', `${fx.img}@@${P1}`, '::/vmlinuz'], { encoding: 'utf8', env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  const m = /<(\d+)-(\d+)>/.exec(shown);
  if (!m) throw new Error(`mshowfat: ${shown}`);
  const boot = readFileSync(fx.img).subarray(P1, P1 + 512);
  const reserved = boot.readUInt16LE(14);
  const fatSectors = boot.readUInt16LE(22);
  const fats = Array.from({ length: boot[16] }, (_, i) => P1 + (reserved + i * fatSectors) * 512);
  return { first: Number(m[1]), last: Number(m[2]), fats };
}

test('a FAT cluster chain that loops, and one that points out of range: the image never enters the cache', async () => {
  const { first, last, fats } = vmlinuzClusters();
  const loop = hostile('fat-loop.img', (fd) => fats.forEach((f) => writeSync(fd, u16(first), 0, 2, f + last * 2)));
  clean(await cli(['images', 'fetch', loop]), new RegExp(`${esc(loop)} partition 1: cluster chain starting at ${first} loops back`));
  const range = hostile('fat-range.img', (fd) => fats.forEach((f) => writeSync(fd, u16(0xff00), 0, 2, f + first * 2)));
  clean(await cli(['images', 'fetch', range]), new RegExp(`${esc(range)} partition 1: cluster ${first} links to cluster 65280, outside`));
  // The same bytes compressed and served over HTTP: the error names the URL, not the cache's temp file.
  const xz = `${range}.xz`;
  execFileSync('xz', ['-T1', '-0', '-k', '-f', range]);
  server.routes.set('/fat-range.img.xz', { file: xz });
  const r = await cli(['images', 'fetch', `${server.url}/fat-range.img.xz`]);
  clean(r, new RegExp(`${esc(server.url)}/fat-range\\.img\\.xz partition 1: cluster ${first} links to cluster 65280`));
  assert.not.match(r.stderr, /\.tmp-\d+|downloads\//, 'no cache file named');
});

test('ext4 with absurd counts or a block bitmap past the end: the image never enters the cache', async () => {
  const sb = P2 + 1024;
  const absurd = hostile('ext4-count.img', (fd) => writeSync(fd, u32(0x7fffffff), 0, 4, sb + 0x4)); // s_blocks_count
  clean(await cli(['images', 'fetch', absurd]), new RegExp(`${esc(absurd)} partition 2: ext4 claims 2147483647 blocks`));
  const logBlock = readFileSync(fx.img).readUInt32LE(sb + 0x18);
  const blockSize = 1024 << logBlock;
  const gdt = P2 + (blockSize === 1024 ? 2048 : blockSize); // the group descriptors: the block after the superblock's
  const bitmap = hostile('ext4-bitmap.img', (fd) => writeSync(fd, u32(0x0fffffff), 0, 4, gdt)); // group 0's bg_block_bitmap
  clean(await cli(['images', 'fetch', bitmap]), new RegExp(`${esc(bitmap)} partition 2: ext4 group 0 block bitmap at block ${0x0fffffff} is beyond the filesystem`));
});

// ---- checksums ----------------------------------------------------------------------------------------------

/** A catalog directory with one entry whose file is fetched from the test server (or `urls`). */
function catalog(file: string, urls?: string[]): string {
  const c = join(dir, `catalog${n++}`);
  mkdirSync(c);
  writeFileSync(join(c, 'test.json'), JSON.stringify({ id: 'test-image', title: 'test', release: '1.0', arch: 'arm64', file, compression: 'xz', sha256sumsUrl: 'SHA256SUMS', urls: urls ?? [`http://images.example.invalid/rel/${file}`], boot: { style: 'cmdline-txt' } }));
  return c;
}

test('checksum mismatch: --sha256 of a file and of a URL, and a SHA256SUMS that does not match (issue 12 point 2)', async () => {
  const wrong = 'ab'.repeat(32);
  clean(await cli(['images', 'fetch', fx.xz, '--sha256', wrong]), new RegExp(`${esc(fx.xz)}: sha256 mismatch: expected ${wrong}`));
  server.routes.set('/x/disk.img.xz', { file: fx.xz });
  clean(await cli(['images', 'fetch', `${server.url}/x/disk.img.xz`, '--sha256', wrong]), new RegExp(`${esc(server.url)}/x/disk\\.img\\.xz: sha256 mismatch`));
  const sums = join(dir, 'BADSUMS');
  writeFileSync(sums, `${'1'.repeat(64)} *slow.img.xz\n`);
  // Slow enough (about 2.5 s) that the system xz decodes it while it downloads, following the .partial: the path
  // whose race once ended in exit 13 with images/stream-*.img.tmp-PID left behind.
  server.routes.set('/rel/slow.img.xz', { file: slow.xz, bytesPerSecond: Math.ceil(statSync(slow.xz).size / 2.5) });
  server.routes.set('/rel/SHA256SUMS', { file: sums });
  const cat = catalog('slow.img.xz');
  for (let i = 0; i < 2; i++) {
    clean(await cli(['images', 'fetch', 'test-image', '--catalog', cat, '--mirror', server.url]), /\/rel\/slow\.img\.xz: sha256 mismatch: expected 1{64}, got [0-9a-f]{64}/);
  }
});

// ---- HTTP faults --------------------------------------------------------------------------------------------

test('HTTP: 404, persistent 5xx, an HTML page, a redirect loop, Content-Encoding, a short body, dropped connections', async () => {
  const page = join(dir, 'login.html');
  writeFileSync(page, '<!DOCTYPE html><html><body>Sign in to the hotel Wi-Fi</body></html>\n');
  server.routes.set('/h/500.img.xz', { status: 500 });
  server.routes.set('/h/503.img.xz', { status: 503 });
  server.routes.set('/h/page.img.xz', { file: page, headers: { 'Content-Type': 'text/html' } });
  server.routes.set('/h/loop.img.xz', { redirect: '/h/loop.img.xz' });
  server.routes.set('/h/gzip.img.xz', { file: fx.xz, headers: { 'Content-Encoding': 'gzip' } });
  server.routes.set('/h/short.img.xz', { file: fx.xz, noRange: true, dropAfter: 5000, dropTimes: 99 });
  server.routes.set('/h/drop.img.xz', { file: fx.xz, dropAfter: 0, dropTimes: 99 });
  const u = (p: string): string => `${server.url}/h/${p}`;
  for (const [path, words] of [
    ['missing.img.xz', /HTTP 404 Not Found: the file is not there/],
    ['500.img.xz', /HTTP 500/],
    ['503.img.xz', /HTTP 503/],
    ['page.img.xz', /the server answered with an HTML page, not the file/],
    ['loop.img.xz', /more than 10 redirects \(a redirect loop\?\)/],
    ['gzip.img.xz', /the server sent the file with Content-Encoding: gzip/],
    ['short.img.xz', /connection (lost|closed) after 5000 of \d+ bytes/],
    ['drop.img.xz', /the server closed the connection before a response \(gave up after 6 attempts without progress\)/],
  ] as const) {
    const r = await cli(['images', 'fetch', u(path)]);
    clean(r, new RegExp(`${esc(u(path))}: (.*: )?${words.source}`));
    assert.not.match(r.stderr, /resume/, `${path}: no resume offered when there is nothing to resume${r.stderr}`);
  }
});

test('a connection dropped after some bytes, then 5xx: the .partial is kept and the message says to run again; the next run resumes', async () => {
  const size = statSync(slow.xz).size;
  const half = Math.floor(size / 2);
  server.routes.set('/r/disk.img.xz', { file: slow.xz, dropAfter: half });
  const cache = join(dir, 'resume-cache');
  // The first request gets half the file; every retry then gets 503.
  const watch = setInterval(() => {
    if (server.requests.some((q) => q.path === '/r/disk.img.xz' && q.sent >= half)) server.routes.set('/r/disk.img.xz', { status: 503 });
  }, 5);
  const r = await cli(['images', 'fetch', `${server.url}/r/disk.img.xz`], { cache });
  clearInterval(watch);
  clean(r, /\/r\/disk\.img\.xz: HTTP 503/, [/^downloads\/[0-9a-f]{16}-disk\.img\.xz\.partial(\.json)?$/]);
  assert.match(r.stderr, /bytes are kept in .*disk\.img\.xz\.partial: run the same command again to resume/);
  assert.is(files(cache).filter((f) => f.endsWith('.partial')).length, 1);
  server.routes.set('/r/disk.img.xz', { file: slow.xz });
  server.requests.length = 0;
  const again = await cli(['images', 'fetch', `${server.url}/r/disk.img.xz`], { cache });
  assert.is(again.code, 0, again.stderr);
  assert.equal(server.requests.map((q) => q.range), [`bytes=${half}-`]);
});

test('kill -9 during a fetch: no image, no final-named download; the next run resumes from the bytes on disk', async () => {
  const size = statSync(slow.xz).size;
  server.routes.set('/k/disk.img.xz', { file: slow.xz, bytesPerSecond: Math.ceil(size / 4) });
  const cache = join(dir, 'kill-cache');
  let pid = 0;
  const running = cli(['images', 'fetch', `${server.url}/k/disk.img.xz`], { cache, onStart: (p) => (pid = p) });
  const partial = (): number => {
    const f = files(cache).find((x) => x.endsWith('.partial'));
    return f ? statSync(join(cache, f)).size : 0;
  };
  const t0 = Date.now();
  while (partial() < size / 4 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
  process.kill(pid, 'SIGKILL');
  const r = await running;
  cases++;
  assert.is(r.code, null, 'killed');
  const had = partial();
  assert.ok(had > 0 && had < size, `a .partial with ${had} of ${size} bytes`);
  const left = files(cache).filter((f) => !/\.partial(\.json)?$/.test(f) && !/^images\/stream-.*\.tmp-\d+$/.test(f));
  assert.equal(left, [], 'no image and no final-named download');
  server.routes.set('/k/disk.img.xz', { file: slow.xz });
  server.requests.length = 0;
  const again = await cli(['images', 'fetch', `${server.url}/k/disk.img.xz`, '--json'], { cache });
  assert.is(again.code, 0, again.stderr);
  assert.equal(server.requests.map((q) => q.range), [`bytes=${had}-`]);
  const result = again.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.event === 'result');
  assert.is(createHash('sha256').update(readFileSync(result.path)).digest('hex'), sha256File(slow.img));
});

// ---- no network (issue 17 point 1) -----------------------------------------------------------------------------

test('no network: a host that does not resolve, a mirror with nothing listening: one line with the cause, then the ways out', async () => {
  const closed = await startServer();
  const dead = closed.url;
  await closed.close();
  const ways = /--mirror URL or PI_IMAGE_MIRROR.*--image PATH\|URL.*pi-image images fetch test-image/;
  const dns = await cli(['images', 'fetch', 'test-image', '--catalog', catalog('disk.img.xz', ['http://nonexistent.invalid/a/disk.img.xz', 'http://nonexistent.invalid/b/disk.img.xz'])]);
  clean(dns, /catalog image test-image: cannot download it: no network or DNS failure \(cannot resolve nonexistent\.invalid\)$/);
  assert.match(dns.stderr, ways);
  assert.is(dns.stderr.trim().split('\n').length, 2, dns.stderr);
  const refused = await cli(['images', 'fetch', 'test-image', '--catalog', catalog('disk.img.xz'), '--mirror', dead]);
  clean(refused, new RegExp(`catalog image test-image: cannot download it: nothing answers at ${esc(new URL(dead).host)} \\(connection refused\\)$`));
  assert.match(refused.stderr, ways);
  assert.is(refused.stderr.trim().split('\n').length, 2, refused.stderr);
  const url = await cli(['images', 'fetch', 'http://nonexistent.invalid/disk.img.xz']);
  clean(url, /http:\/\/nonexistent\.invalid\/disk\.img\.xz: no network or DNS failure: cannot resolve host nonexistent\.invalid/);
});

test.run();
