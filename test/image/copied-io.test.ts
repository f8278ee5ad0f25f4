// CopiedIO: a destination that holds copied ranges of a source, read from the source while those bytes are
// unchanged. Every read returns the destination file's own bytes (checked against readFileSync after seeded random
// writes, across range edges and a shift), clean bytes come from the source and written ones from the destination
// (counted reads), and bounds errors are the destination's.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO, MemoryIO, type BlockIO } from '../../lib/image/io.ts';
import { CopiedIO } from '../../lib/image/copied-io.ts';
import { copyRangesInKernel } from '../../lib/image/kernel-copy.ts';
import { copyRanges } from '../../lib/image/sparse.ts';
import { OutOfBoundsError } from '../../lib/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-copied-io-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A seeded generator (mulberry32), so a failure repeats. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Reads counted per side. */
function counted(io: BlockIO): BlockIO & { bytes: number } {
  const c = Object.create(io) as BlockIO & { bytes: number };
  c.bytes = 0;
  c.readInto = (buf: Buffer, offset: number) => {
    c.bytes += buf.length;
    io.readInto(buf, offset);
  };
  return c;
}

const SIZE = 1 << 20;
const SHIFT = 3 * 4096 + 17; // source offset = destination offset + SHIFT

test('reads always give the destination file bytes, through random writes, with the copy made by the kernel', () => {
  const srcPath = join(dir, 'src');
  const src = Buffer.alloc(SIZE + SHIFT);
  const r = rng(7);
  for (let i = 0; i < src.length; i++) src[i] = Math.floor(r() * 256);
  writeFileSync(srcPath, src);
  const dstPath = join(dir, 'dst');
  const ranges = [
    { start: 4096, length: 50_000 },
    { start: 100_000, length: 1 },
    { start: 200_003, length: 300_000 },
    { start: SIZE - 9000, length: 9000 },
  ];
  const out = FileIO.create(dstPath, SIZE);
  const srcIO = FileIO.open(srcPath);
  const shifted = ranges.map((x) => ({ start: x.start + SHIFT, length: x.length }));
  out.close();
  if (!copyRangesInKernel(srcPath, [dstPath], shifted, { delta: -SHIFT })) {
    const o = FileIO.open(dstPath, { write: true });
    for (const x of ranges) o.write(x.start, src.subarray(x.start + SHIFT, x.start + SHIFT + x.length));
    o.close();
  }
  const dst = FileIO.open(dstPath, { write: true });
  const view = new CopiedIO(dst, srcIO, ranges, SHIFT);
  try {
    for (let round = 0; round < 300; round++) {
      if (r() < 0.4) {
        const len = 1 + Math.floor(r() * 20_000);
        const at = Math.floor(r() * (SIZE - len));
        const data = Buffer.alloc(len, 1 + (round % 250));
        view.write(at, data);
      } else {
        const len = 1 + Math.floor(r() * 60_000);
        const at = Math.floor(r() * (SIZE - len));
        const got = view.read(at, len);
        const want = readFileSync(dstPath).subarray(at, at + len);
        assert.ok(got.equals(want), `round ${round}: read ${at}+${len} differs from the file`);
      }
    }
    assert.ok(view.read(0, SIZE).equals(readFileSync(dstPath)), 'the whole view equals the file');
  } finally {
    dst.close();
    srcIO.close();
  }
});

test('clean bytes come from the source, written ones from the destination', () => {
  const src = new MemoryIO(Buffer.alloc(64 * 1024, 5));
  const dstMem = new MemoryIO(Buffer.alloc(32 * 1024));
  copyRanges(src, dstMem, [{ start: 0, length: 16 * 1024 }]);
  const s = counted(src);
  const d = counted(dstMem);
  const view = new CopiedIO(d, s, [{ start: 0, length: 16 * 1024 }], 0);
  view.read(0, 32 * 1024);
  assert.is(s.bytes, 16 * 1024, 'the copied range is read from the source');
  assert.is(d.bytes, 16 * 1024, 'the rest from the destination');
  view.write(4096, Buffer.alloc(100, 9));
  s.bytes = 0;
  d.bytes = 0;
  const got = view.read(0, 16 * 1024);
  assert.is(d.bytes, 100, 'the written bytes are read from the destination');
  assert.is(s.bytes, 16 * 1024 - 100);
  assert.is(got[4095], 5);
  assert.is(got[4096], 9);
  assert.is(got[4195], 9);
  assert.is(got[4196], 5);
});

test('out of bounds is the destination error', () => {
  const view = new CopiedIO(new MemoryIO(Buffer.alloc(4096)), new MemoryIO(Buffer.alloc(8192)), [{ start: 0, length: 4096 }], 0);
  assert.throws(() => view.read(4000, 200), (e: unknown) => e instanceof OutOfBoundsError);
  assert.throws(() => view.write(4095, Buffer.alloc(2)), (e: unknown) => e instanceof OutOfBoundsError);
});

test.run();
