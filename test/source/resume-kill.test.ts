// A fetch killed with SIGKILL mid-download (the real CLI in a child process) resumes in the next run from the bytes
// it had on disk: the server counts what it sends, and the second run gets exactly the missing bytes. Then
// `images verify` and `images prune` work on the result.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, readdirSync, statSync, existsSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startServer, type TestServer } from '../helpers/source-server.ts';
import { sha256File } from '../helpers/source-fixtures.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'pi-image-kill-'));
const cache = join(dir, 'cache');
let server: TestServer;

// An 8 MiB raw disk image: an MBR (sfdisk) with one partition full of random bytes, so nothing is sparse.
const img = join(dir, 'big.img');
const SIZE = 8 * 1024 * 1024;
{
  const fd = openSync(img, 'w');
  ftruncateSync(fd, SIZE);
  writeSync(fd, randomBytes(SIZE - 1024 * 1024), 0, SIZE - 1024 * 1024, 1024 * 1024);
  closeSync(fd);
  execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', img], { input: 'label: dos\n2048,,83\n', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
}

test.before(async () => {
  server = await startServer();
});
test.after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): ReturnType<typeof spawn> {
  return spawn(process.execPath, ['--import', 'tsx', join(root, 'bin/pi-image.ts'), ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PI_IMAGE_CACHE: cache } });
}

function partialSize(): number {
  const d = join(cache, 'downloads');
  if (!existsSync(d)) return 0;
  const f = readdirSync(d).find((x) => x.endsWith('.partial'));
  return f ? statSync(join(d, f)).size : 0;
}

async function exit(child: ReturnType<typeof spawn>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stdout, stderr };
}

test('SIGKILLed fetch resumes in the next run without re-fetching the bytes it had', async () => {
  server.routes.set('/big.img', { file: img, bytesPerSecond: 2 * 1024 * 1024 });
  const url = `${server.url}/big.img`;
  const first = cli(['images', 'fetch', url, '--json']);
  const firstDone = exit(first);
  const t0 = Date.now();
  while (partialSize() < 2 * 1024 * 1024 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
  first.kill('SIGKILL');
  const killed = await firstDone;
  assert.is(killed.code, null, 'killed, not finished');
  const had = partialSize();
  assert.ok(had >= 2 * 1024 * 1024 && had < SIZE, `partial has ${had} bytes`);

  server.routes.set('/big.img', { file: img });
  server.served.clear();
  server.requests.length = 0;
  const second = await exit(cli(['images', 'fetch', url, '--json']));
  assert.is(second.code, 0, second.stderr);
  assert.equal(server.requests.map((r) => r.range), [`bytes=${had}-`]);
  // Counted per request: the killed run's connection may still be sending when the counters are cleared.
  assert.is(server.requests[0].sent, SIZE - had, 'only the missing bytes were fetched');
  const result = JSON.parse(second.stdout.trim().split('\n').filter((l) => l.includes('"result"')).pop()!);
  assert.is(sha256File(result.path), sha256File(img));
  assert.is(result.sourceSha256, sha256File(img), "a raw .img is its own source");
  assert.is(result.partitions.length, 1);
  assert.is(partialSize(), 0);

  // verify: all good; then a flipped byte in the cached image is found and the entry is dropped.
  const ok = await exit(cli(['images', 'verify', '--json']));
  assert.is(ok.code, 0, ok.stderr);
  const fd = openSync(result.path, 'r+');
  writeSync(fd, Buffer.from([0x42]), 0, 1, 4 * 1024 * 1024);
  closeSync(fd);
  const bad = await exit(cli(['images', 'verify']));
  assert.is(bad.code, 1);
  assert.match(bad.stdout, /BAD\s+image/);
  assert.not.ok(existsSync(result.path.replace(/\.img$/, '.json')), 'record removed: never used as valid again');
  const pruned = await exit(cli(['images', 'prune', '--json']));
  assert.is(pruned.code, 0);
  assert.not.ok(existsSync(result.path));
});

test.run();
