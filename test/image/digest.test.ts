// digestImage (reads a sparse image back) and ImageDigester (hashes while writing, ranges inferred from the writes)
// agree with each other, with sha256sum of the file and with bmaptool's own check of the range checksums; known
// range checksums are reused and shared between digesters fed the same data. An image partly copied from a base
// (CopiedIO) is split at the unchanged copy's edges the same way whether its runs' checksums are remembered or not,
// and with them remembered its copied bytes are not read at all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, writeSync, ftruncateSync, closeSync, writeFileSync, rmSync, readFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { contentKey, digestImage, splitAtCopied, ImageDigester, type KnownRange } from '../../lib/image/digest.ts';
import { FileIO, type BlockIO } from '../../lib/image/io.ts';
import { CopiedIO } from '../../lib/image/copied-io.ts';
import { renderBmap, toBlockRanges } from '../../lib/image/bmap.ts';

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

test('splitAtCopied: runs split where whole clean blocks begin and end', () => {
  const bs = 4096;
  // Blocks 0-9 and 20-29 mapped; clean bytes cover blocks 2-4 whole (plus part of 5) and 8-22.
  const got = splitAtCopied(
    [{ first: 0, last: 9 }, { first: 20, last: 29 }],
    [{ start: 2 * bs - 100, length: 3 * bs + 100 + 50 }, { start: 8 * bs, length: 15 * bs }],
    bs,
  );
  assert.equal(got, [
    { first: 0, last: 1, copied: false },
    { first: 2, last: 4, copied: true },
    { first: 5, last: 7, copied: false },
    { first: 8, last: 9, copied: true },
    { first: 20, last: 22, copied: true },
    { first: 23, last: 29, copied: false },
  ]);
});

test('a partly copied image: the same ranges with or without remembered runs, right sums, copied bytes unread', () => {
  const base = join(dir, 'copy-base');
  const img = join(dir, 'copy-img');
  const bs = 4096;
  const shift = 3 * bs;
  const baseBytes = Buffer.alloc(4 << 20);
  for (let i = 0; i < baseBytes.length; i++) baseBytes[i] = (i * 7 + 3) % 253;
  writeFileSync(base, baseBytes);
  const clean = [{ start: bs, length: 40 * bs + 123 }, { start: 60 * bs, length: 100 * bs }];
  const make = (): { view: CopiedIO; close: () => void; reads: { base: number } } => {
    const out = FileIO.create(img, 2 << 20);
    for (const c of clean) out.write(c.start, baseBytes.subarray(c.start + shift, c.start + shift + c.length));
    const src = FileIO.open(base);
    const reads = { base: 0 };
    const counted = Object.create(src) as BlockIO;
    counted.readInto = (buf: Buffer, off: number) => {
      reads.base += buf.length;
      src.readInto(buf, off);
    };
    const view = new CopiedIO(out, counted, clean, shift);
    view.write(10 * bs + 5, Buffer.from('edited inside the first copy'));
    view.write(200 * bs, Buffer.alloc(3000, 9)); // new data after both
    return { view, reads, close: () => (out.close(), src.close()) };
  };
  const mapped = [{ start: bs, length: 40 * bs + 123 }, { start: 60 * bs, length: 100 * bs }, { start: 200 * bs, length: 3000 }];
  const known = new Map<string, string>();
  const first = make();
  const d1 = digestImage(first.view, mapped, { wholes: new Map(), copied: { ...first.view.cleanRanges(), known } });
  first.close();
  assert.is(d1.sha256, execFileSync('sha256sum', [img]).toString().split(' ')[0], 'whole sha256 is the file');
  const file = readFileSync(img);
  for (const r of d1.ranges) {
    const want = createHash('sha256').update(file.subarray(r.first * bs, Math.min(file.length, (r.last + 1) * bs))).digest('hex');
    assert.is(r.checksum, want, `range ${r.first}-${r.last}`);
  }
  assert.ok(d1.ranges.length > mapped.length, 'split at the edited block');
  assert.ok(known.size >= 2, 'copied runs remembered');
  // Again, with the runs remembered: the same digest; only what was written is read.
  const second = make();
  const wholes = new Map([[contentKey(d1.size, d1.blockSize, d1.ranges), d1.sha256]]);
  const d2 = digestImage(second.view, mapped, { wholes, copied: { ...second.view.cleanRanges(), known } });
  const baseRead = second.reads.base;
  second.close();
  assert.equal(d2, d1);
  // Only the runs that are not a whole-block copy are read (their clean bytes come from the base through the view).
  const notCopied = splitAtCopied(toBlockRanges(mapped, bs, d1.size), second.view.cleanRanges().clean, bs)
    .filter((r) => !r.copied)
    .reduce((n, r) => n + (r.last - r.first + 1) * bs, 0);
  assert.ok(baseRead <= notCopied && notCopied < 5 * bs, `read ${baseRead} bytes of the base, at most ${notCopied}`);
  // Without the content cache nor remembered runs, the same split and sums (nothing depends on what was known).
  const third = make();
  const d3 = digestImage(third.view, mapped, { copied: { ...third.view.cleanRanges(), known: new Map() } });
  third.close();
  assert.equal(d3, d1);
  // And bmaptool checks the split ranges against the file.
  const bmap = join(dir, 'copy.bmap');
  writeFileSync(bmap, renderBmap({ imageSize: d1.size, blockSize: bs, ranges: d1.ranges }));
  execFileSync('bmaptool', ['copy', '--bmap', bmap, img, join(dir, 'copy-out')], { stdio: 'ignore' });
  assert.ok(readFileSync(join(dir, 'copy-out')).equals(file));
});

test.run();
