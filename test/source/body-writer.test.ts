// BodyWriter against a real file and the real hashing thread: bytes land at their offsets in order and hash to what
// Node's own sha256 says; a trickle of small pieces still reaches the disk within ~50 ms (a slow download's file
// grows as it comes); a tap sees every byte once, in order, only after it is on disk.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BodyWriter, WRITE_BUF } from '../../lib/source/body-writer.ts';
import { ThreadHash } from '../../lib/source/hash-thread.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-bw-'));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('pieces of every size reach the file and the hash in order; a tap sees each byte once, after it is written', async () => {
  const data = randomBytes(3 * WRITE_BUF + 12345);
  const path = join(dir, 'a.bin');
  const fd = openSync(path, 'w+');
  const hash = new ThreadHash();
  const tapped: Buffer[] = [];
  let onDiskWhenTapped = true;
  const w = new BodyWriter(fd, 0, hash, (bytes) => {
    const seen = tapped.reduce((s, b) => s + b.length, 0) + bytes.length;
    if (statSync(path).size < seen) onDiskWhenTapped = false;
    tapped.push(Buffer.from(bytes));
  });
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = Math.min(data.length - at, 1 + ((i * 7919) % (256 << 10)));
    const wait = w.push(data.subarray(at, at + n));
    at += n;
    if (wait) await wait;
  }
  await w.flush();
  w.release();
  closeSync(fd);
  assert.is(await hash.digest(), sha(data));
  assert.ok(readFileSync(path).equals(data), 'the file holds the bytes pushed');
  assert.ok(Buffer.concat(tapped).equals(data), 'the tap saw every byte once, in order');
  assert.ok(onDiskWhenTapped, 'the tap saw bytes only once they were on disk');
});

test('a trickle of small pieces is on disk within ~50 ms of each, before any flush', async () => {
  const path = join(dir, 'b.bin');
  const fd = openSync(path, 'w+');
  const hash = new ThreadHash();
  const w = new BodyWriter(fd, 0, hash);
  const piece = randomBytes(1000);
  let sent = 0;
  for (let i = 0; i < 5; i++) {
    const wait = w.push(piece);
    sent += piece.length;
    if (wait) await wait;
    await new Promise((r) => setTimeout(r, 120));
    assert.is(statSync(path).size, sent, `after piece ${i + 1} and 120 ms, its bytes are in the file`);
  }
  await w.flush();
  w.release();
  closeSync(fd);
  assert.is(await hash.digest(), sha(Buffer.concat(Array(5).fill(piece))));
});

test.run();
