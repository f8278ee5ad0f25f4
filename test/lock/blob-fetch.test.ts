// The registry blob fetch resumes: a server on 127.0.0.1 that cuts the first response halfway and honours Range
// afterwards; the blob is complete and verified, the second request asked for the rest only. A wrong digest
// leaves nothing in the store; a stopped fetch leaves its bytes for the next to resume.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBody } from '../../lib/source/http-body.ts';
import { fetchBlob } from '../../lib/lock/blob-fetch.ts';

const blob = randomBytes(3 << 20);
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
const ranges: (string | undefined)[] = [];
const server = createServer((req, res) => {
  const range = req.headers.range;
  ranges.push(range);
  if (!range) {
    res.writeHead(200, { 'content-length': blob.length });
    res.write(blob.subarray(0, 1 << 20), () => res.destroy()); // cut after 1 MiB
    return;
  }
  const from = Number(/bytes=(\d+)-/.exec(range)![1]);
  res.writeHead(206, { 'content-length': blob.length - from, 'content-range': `bytes ${from}-${blob.length - 1}/${blob.length}` });
  res.end(blob.subarray(from));
});
const dir = mkdtempSync(join(tmpdir(), 'pi-image-blob-'));
let url = '';

test.before(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/blob`;
});
test.after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('an interrupted blob resumes with Range and is verified', async () => {
  const dest = join(dir, 'good');
  const r = await fetchBlob({ dest, digest, size: blob.length, what: 'test blob', backoffMs: 10, get: (range) => getBody(url, range ? { Range: range } : {}) });
  assert.ok(readFileSync(dest).equals(blob));
  assert.is(ranges[0], undefined);
  assert.match(ranges[1] ?? '', /^bytes=\d+-$/);
  assert.ok(Number(/\d+/.exec(ranges[1]!)![0]) > 0, 'the second request asked for the rest only');
  assert.is(r.fetched, blob.length);
});

test('a blob that does not hash to its digest is refused and nothing is kept', async () => {
  const dest = join(dir, 'bad');
  let err: unknown;
  try {
    await fetchBlob({ dest, digest: `sha256:${'0'.repeat(64)}`, size: blob.length, what: 'test blob', backoffMs: 10, get: (range) => getBody(url, range ? { Range: range } : {}) });
  } catch (e) {
    err = e;
  }
  assert.match(String(err), /test blob: sha256 mismatch: expected sha256:0{64}/);
  assert.not.ok(existsSync(dest));
  assert.not.ok(existsSync(`${dest}.partial`));
});

test('a stopped fetch keeps its .partial, and the next one resumes from it', async () => {
  const dest = join(dir, 'stopped');
  const stop = new AbortController();
  const get = (range?: string) => getBody(url, range ? { Range: range } : {});
  let err: unknown;
  try {
    await fetchBlob({ dest, digest, size: blob.length, what: 'test blob', backoffMs: 10, get, signal: stop.signal, onProgress: () => stop.abort(new Error('stopped by the test')) });
  } catch (e) {
    err = e;
  }
  assert.match(String(err), /stopped by the test/);
  assert.not.ok(existsSync(dest));
  const kept = statSync(`${dest}.partial`).size;
  assert.ok(kept > 0 && kept < blob.length, `${kept} bytes kept`);
  const before = ranges.length;
  const r = await fetchBlob({ dest, digest, size: blob.length, what: 'test blob', backoffMs: 10, get });
  assert.ok(readFileSync(dest).equals(blob));
  assert.is(ranges[before], `bytes=${kept}-`, 'resumed from the kept bytes');
  assert.is(r.fetched, blob.length - kept);
});

test.run();
