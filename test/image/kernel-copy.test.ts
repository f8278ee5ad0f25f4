// copyRangesInKernel: every destination gets exactly the source's bytes in the ranges (at an offset too), nothing
// outside them, the source's holes inside a range stay holes (SEEK_DATA on the result, through dataExtents), and
// PI_IMAGE_NO_KERNEL_COPY=1 or a missing source gives false (the caller copies itself), never a part copy claimed done.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyRangesInKernel } from '../../lib/image/kernel-copy.ts';
import { dataExtents } from '../../lib/image/extents.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-kcopy-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1 << 20;
const size = 16 * MiB;
const src = join(dir, 'src');
// Data everywhere but a hole at [4, 6) MiB; bytes that differ by position, so a shifted copy shows.
{
  const fd = openSync(src, 'w');
  ftruncateSync(fd, size);
  const chunk = Buffer.alloc(MiB);
  for (let m = 0; m < 16; m++) {
    if (m === 4 || m === 5) continue;
    for (let i = 0; i < MiB; i++) chunk[i] = ((m * 131 + i * 7) % 255) + 1;
    writeSync(fd, chunk, 0, MiB, m * MiB);
  }
  closeSync(fd);
}
const linux = process.platform === 'linux';
// Odd ends (not block-aligned), one range across the hole, one at the very end.
const ranges = [
  { start: 4096 + 100, length: 10000 },
  { start: 3 * MiB + 5, length: 4 * MiB },
  { start: 9 * MiB, length: 2 * MiB },
  { start: size - 777, length: 777 },
];

function expected(delta: number, total: number): Buffer {
  const s = readFileSync(src);
  const out = Buffer.alloc(total);
  for (const r of ranges) s.copy(out, r.start + delta, r.start, r.start + r.length);
  return out;
}

test('copies exactly the ranges into every destination; holes inside them stay holes', () => {
  const dsts = [join(dir, 'a'), join(dir, 'b')];
  for (const d of dsts) writeFileSync(d, '');
  const ok = copyRangesInKernel(src, dsts, ranges);
  if (!linux) {
    assert.is(ok, false, 'Linux only');
    return;
  }
  assert.ok(ok, 'the kernel copied them');
  for (const d of dsts) {
    const got = readFileSync(d);
    assert.is(got.length, size, 'the file ends where the last range ends');
    assert.ok(got.equals(expected(0, size)), `${d}: the ranges' bytes, zeros elsewhere`);
    const ext = dataExtents(d, { blockSize: 4096 });
    if (ext) {
      const inHole = ext.some((x) => x.start < 6 * MiB && x.start + x.length > 4 * MiB);
      assert.not.ok(inHole, `${d}: the source's hole is a hole in the copy: ${JSON.stringify(ext)}`);
    }
  }
});

test('shifted by delta', () => {
  if (!linux) return;
  const d = join(dir, 'shifted');
  writeFileSync(d, '');
  assert.ok(copyRangesInKernel(src, [d], ranges, { delta: 2 * MiB }));
  assert.ok(readFileSync(d).equals(expected(2 * MiB, size + 2 * MiB)));
});

test('false where it cannot, so the caller copies: forced off, or the source missing', () => {
  const d = join(dir, 'none');
  writeFileSync(d, '');
  process.env.PI_IMAGE_NO_KERNEL_COPY = '1';
  try {
    assert.is(copyRangesInKernel(src, [d], ranges), false);
  } finally {
    delete process.env.PI_IMAGE_NO_KERNEL_COPY;
  }
  assert.is(copyRangesInKernel(join(dir, 'missing'), [d], ranges), false);
  assert.is(readFileSync(d).length, 0, 'nothing written');
});

test.run();
