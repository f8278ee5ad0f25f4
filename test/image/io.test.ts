// BlockIO: bounds checks and windows (SliceIO) over real files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, rmSync, statSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO, SliceIO } from '../../lib/image/io.ts';
import { OutOfBoundsError, CorruptImageError } from '../../lib/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-io-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('reads and writes at positions, refuses out-of-range access', () => {
  const io = FileIO.create(join(dir, 'a.img'), 4096);
  io.write(100, Buffer.from('hello'));
  assert.is(io.read(100, 5).toString(), 'hello');
  assert.throws(() => io.read(4095, 2), (e: unknown) => e instanceof OutOfBoundsError);
  assert.throws(() => io.write(-1, Buffer.from('x')), (e: unknown) => e instanceof OutOfBoundsError);
  io.close();
});

test('a created file reads as zeros past its last write and has its full size once closed (or synced)', () => {
  const path = join(dir, 'lazy.img');
  const io = FileIO.create(path, 1 << 20);
  io.write(4096, Buffer.from('data'));
  assert.is(statSync(path).size, 4100, 'not cut to its size while written: writes land at its end');
  assert.equal([...io.read(8192, 16)], new Array(16).fill(0), 'past the end: zeros, as the finished file');
  assert.is(io.read(4096, 4).toString(), 'data');
  io.sync();
  assert.is(statSync(path).size, 1 << 20);
  io.write(1000, Buffer.from('x'));
  io.close();
  assert.is(statSync(path).size, 1 << 20);
  assert.is(readFileSync(path).subarray(4096, 4100).toString(), 'data');
  const other = FileIO.create(join(dir, 'lazy2.img'), 12345);
  other.close();
  assert.is(statSync(join(dir, 'lazy2.img')).size, 12345, 'closed without a write: still its full size');
});

test('a slice maps offsets and stays inside its window', () => {
  const io = FileIO.create(join(dir, 'b.img'), 8192);
  const part = new SliceIO(io, 1024, 2048, 'b.img p1');
  part.write(0, Buffer.from('part'));
  assert.is(io.read(1024, 4).toString(), 'part');
  assert.throws(() => part.read(2047, 2), /beyond the end/);
  io.close();
});

test('a file shorter than its claimed size is reported as truncated', () => {
  writeFileSync(join(dir, 'short.img'), Buffer.alloc(10));
  const io = FileIO.open(join(dir, 'short.img'), { size: 100 });
  assert.throws(() => io.read(0, 50), (e: unknown) => e instanceof CorruptImageError && /truncated/.test(String(e)));
  io.close();
});

test.run();
