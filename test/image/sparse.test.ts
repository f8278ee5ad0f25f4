// Sparse copy: range arithmetic, zero tests, copying only chosen ranges into a sparse file (checked with stat and
// cmp), and finding the data blocks of a file by scanning it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO } from '../../lib/image/io.ts';
import { mergeRanges, alignRanges, isZero, copyRanges, dataRangesOfFile, type ByteRange } from '../../lib/image/sparse.ts';
import { OutOfBoundsError } from '../../lib/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-sparse-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1 << 20;
/** Bytes really allocated on disk, as `stat` reports them. */
const allocated = (p: string) => Number(execFileSync('stat', ['-c', '%b*%B', p]).toString().trim().split('*').reduce((a, b) => String(Number(a) * Number(b))));

test('mergeRanges and alignRanges', () => {
  assert.equal(mergeRanges([{ start: 10, length: 5 }, { start: 0, length: 10 }, { start: 30, length: 0 }, { start: 12, length: 10 }, { start: 40, length: 1 }]), [
    { start: 0, length: 22 },
    { start: 40, length: 1 },
  ]);
  assert.equal(alignRanges([{ start: 100, length: 10 }, { start: 5000, length: 1 }], 4096), [{ start: 0, length: 8192 }]);
  assert.equal(alignRanges([{ start: 9000, length: 10 }], 4096, 10000), [{ start: 8192, length: 10000 - 8192 }]);
});

test('isZero on empty, odd-sized, large and nearly-zero buffers', () => {
  assert.ok(isZero(Buffer.alloc(0)));
  assert.ok(isZero(Buffer.alloc(3 * MiB + 7)));
  const b = Buffer.alloc(3 * MiB + 7);
  b[3 * MiB + 6] = 1;
  assert.not.ok(isZero(b));
  assert.not.ok(isZero(new Uint8Array([0, 0, 9])));
});

/** A 64 MiB sparse source with data at a few places, some of it all-zero inside a range. */
function makeSource(): { path: string; data: ByteRange[] } {
  const path = join(dir, 'src.img');
  const io = FileIO.create(path, 64 * MiB);
  const data: ByteRange[] = [
    { start: 0, length: 512 },
    { start: 5 * MiB, length: 3 * MiB + 100 },
    { start: 40 * MiB + 4096, length: 8192 },
    { start: 64 * MiB - 4096, length: 4096 },
  ];
  let seed = 1;
  for (const r of data) {
    const b = Buffer.alloc(r.length);
    for (let i = 0; i < b.length; i++) b[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24 || 1;
    io.write(r.start, b);
  }
  io.close();
  return { path, data };
}

test('copies only the given ranges: holes stay holes and contents are equal', () => {
  const { path, data } = makeSource();
  const src = FileIO.open(path);
  const dstPath = join(dir, 'dst.img');
  const dst = FileIO.create(dstPath, src.size);
  const events: number[] = [];
  // Ranges as a filesystem map would give them: whole blocks, a bit wider than the data.
  const ranges = alignRanges([...data, { start: 20 * MiB, length: 2 * MiB } /* zeros in the source */], 4096);
  const stats = copyRanges(src, dst, ranges, { skipZeroBlocks: true, chunk: MiB, onProgress: (e) => events.push(e.done) });
  dst.sync();
  src.close();
  dst.close();
  execFileSync('cmp', [path, dstPath]);
  assert.is(statSync(dstPath).size, 64 * MiB);
  // Only the non-zero blocks were written: allocated space is about the data (≤ data rounded to 4 KiB + slack).
  const dataBytes = alignRanges(data, 4096).reduce((s, r) => s + r.length, 0);
  assert.ok(allocated(dstPath) <= dataBytes + 64 * 1024, `allocated ${allocated(dstPath)} vs data ${dataBytes}`);
  assert.is(stats.bytesWritten, dataBytes);
  assert.is(events[events.length - 1], stats.bytesRead);
  const du = Number(execFileSync('du', ['-B1', dstPath]).toString().split(/\s/)[0]);
  assert.ok(du < 8 * MiB, `du says ${du}`);
});

test('offsets shift reads and writes; ranges beyond the end are refused', () => {
  const { path } = makeSource();
  const src = FileIO.open(path);
  const dst = FileIO.create(join(dir, 'off.img'), 8 * MiB);
  copyRanges(src, dst, [{ start: 0, length: 4 * MiB }], { srcOffset: 5 * MiB, dstOffset: MiB });
  assert.ok(dst.read(MiB, 4 * MiB).equals(src.read(5 * MiB, 4 * MiB)));
  assert.throws(() => copyRanges(src, dst, [{ start: 0, length: 8 * MiB }], { dstOffset: MiB }), (e: unknown) => e instanceof OutOfBoundsError);
  src.close();
  dst.close();
});

test('dataRangesOfFile finds exactly the non-zero 4 KiB blocks', () => {
  const { path, data } = makeSource();
  const found = dataRangesOfFile(path, { chunk: MiB });
  assert.equal(found, alignRanges(data, 4096, 64 * MiB));
  // A file whose size is not a block multiple: the last range is clipped to the size.
  const odd = join(dir, 'odd.img');
  const io = FileIO.create(odd, 10000);
  io.write(9999, Buffer.from([7]));
  io.close();
  assert.equal(dataRangesOfFile(odd), [{ start: 8192, length: 10000 - 8192 }]);
});

test.run();
