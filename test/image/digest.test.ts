// digestImage (reads a sparse image back) and ImageDigester (hashes while writing, ranges inferred from the writes)
// agree with each other, with sha256sum of the file and with bmaptool's own check of the range checksums; known
// range checksums are reused and shared between digesters fed the same data.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, writeSync, ftruncateSync, closeSync, writeFileSync, rmSync, readFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { contentKey, digestImage, ImageDigester, type KnownRange } from '../../lib/image/digest.ts';
import { renderBmap } from '../../lib/image/bmap.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-digest-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

// Data runs at odd offsets and lengths (not block-aligned), two of them sharing a 4 KiB block, one at the very end.
const size = 9 * 1024 * 1024 + 1000;
const runs = [
  { start: 0, length: 512 },
  { start: 1 << 20, length: 70000 },
  { start: (1 << 20) + 70000 + 100, length: 3000 },
  { start: 5 * 1024 * 1024 + 7, length: 1 << 20 },
  { start: size - 333, length: 333 },
];
const data = runs.map((r, i) => Buffer.from(Array.from({ length: r.length }, (_, j) => (i * 37 + j * 13 + 1) % 251 + 1)));
const path = join(dir, 'img');
const fd = openSync(path, 'w');
ftruncateSync(fd, size);
runs.forEach((r, i) => writeSync(fd, data[i], 0, r.length, r.start));
closeSync(fd);

test('ImageDigester fed the writes equals digestImage of the file and sha256sum', () => {
  const read = digestImage(path, runs);
  const d = new ImageDigester(size);
  // fed in uneven pieces, as a copy loop would
  runs.forEach((r, i) => {
    for (let o = 0; o < r.length; o += 4099) d.update(r.start + o, data[i].subarray(o, Math.min(r.length, o + 4099)));
  });
  const streamed = d.finish();
  const sum = execFileSync('sha256sum', [path]).toString().split(' ')[0];
  assert.is(read.sha256, sum);
  assert.equal(streamed, read);
  assert.is(streamed.ranges.length, 4, 'the two runs sharing a block merge into one block range');
});

test('known range checksums are taken as given; a follower takes the leader\'s; whole:false skips the file hash', () => {
  const full = digestImage(path, runs);
  const known = new Map<number, KnownRange>(full.ranges.slice(1).map((r) => [r.first, { last: r.last, checksum: r.checksum }]));
  const d = new ImageDigester(size, { known });
  runs.forEach((r, i) => d.update(r.start, data[i]));
  assert.equal(d.finish(), full);

  const shared = new Map<number, KnownRange>();
  const leader = new ImageDigester(size, { known: shared, learn: true });
  const follower = new ImageDigester(size, { known: shared, hashRange: (first) => first === 0 });
  runs.forEach((r, i) => {
    leader.update(r.start, data[i]);
    follower.update(r.start, data[i]);
  });
  assert.equal(leader.finish(), full);
  assert.equal(follower.finish(), full);

  const partial = new ImageDigester(size, { whole: false });
  runs.forEach((r, i) => partial.update(r.start, data[i]));
  const p = partial.finish();
  assert.is(p.sha256, '');
  assert.equal(p.ranges, full.ranges);
});

test('a known checksum that does not match the range written is an error, not a wrong map', () => {
  const known = new Map<number, KnownRange>([[256, { last: 999, checksum: 'x' }]]);
  const d = new ImageDigester(size, { known });
  assert.throws(() => {
    runs.forEach((r, i) => d.update(r.start, data[i]));
    d.finish();
  }, /no checksum known for blocks 256-/);
});

test('bmaptool accepts the streamed range checksums', () => {
  const d = new ImageDigester(size);
  runs.forEach((r, i) => d.update(r.start, data[i]));
  const dg = d.finish();
  const bmap = join(dir, 'img.bmap');
  writeFileSync(bmap, renderBmap({ imageSize: size, blockSize: dg.blockSize, ranges: dg.ranges }));
  const out = join(dir, 'copy');
  execFileSync('bmaptool', ['copy', '--bmap', bmap, path, out], { stdio: 'pipe' });
  assert.is(createHash('sha256').update(readFileSync(out)).digest('hex'), dg.sha256);
});

test('writes out of order or beyond the image are refused', () => {
  const d = new ImageDigester(size);
  d.update(1 << 20, data[1].subarray(0, 10));
  assert.throws(() => d.update(0, data[0]), /must ascend/);
  const e = new ImageDigester(size);
  assert.throws(() => e.update(size - 5, Buffer.alloc(10, 1)), /beyond the image size/);
});

test('a whole-file sha256 remembered by content key skips the zeros after the last range, and only for the same content', () => {
  // Data at the front, 6 MiB of zeros after it (an SD image's free FAT space, smaller); b differs from a in one byte.
  const mk = (name: string, flip: boolean): string => {
    const p = join(dir, name);
    const f = openSync(p, 'w');
    ftruncateSync(f, 7 << 20);
    const bytes = Buffer.from(data[1]!);
    if (flip) bytes[500] ^= 0xff;
    writeSync(f, bytes, 0, bytes.length, 4096);
    closeSync(f);
    return p;
  };
  const a = mk('tail-a', false);
  const b = mk('tail-b', true);
  const mapped = [{ start: 4096, length: data[1]!.length }];
  const sum = (p: string) => execFileSync('sha256sum', [p]).toString().split(' ')[0];
  const wholes = new Map<string, string>();
  const first = digestImage(a, mapped, { wholes });
  assert.is(first.sha256, sum(a));
  assert.equal([...wholes.values()], [first.sha256]);
  assert.is(contentKey(first.size, first.blockSize, first.ranges), [...wholes.keys()][0]);
  // A hit is taken as it is (the zeros are not hashed): what the map says comes back.
  const key = [...wholes.keys()][0]!;
  wholes.set(key, 'f'.repeat(64));
  assert.is(digestImage(a, mapped, { wholes }).sha256, 'f'.repeat(64));
  wholes.set(key, first.sha256);
  // Other content has another key: hashed in full, and added.
  const other = digestImage(b, mapped, { wholes });
  assert.is(other.sha256, sum(b));
  assert.is.not(other.sha256, first.sha256);
  assert.is(wholes.size, 2);
  // Same ranges but another size: another key too.
  truncateSync(a, 8 << 20);
  const longer = digestImage(a, mapped, { wholes });
  assert.is(longer.sha256, sum(a));
  assert.is(wholes.size, 3);
});

test.run();
