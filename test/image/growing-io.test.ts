// GrowingFileIO: reading a file while another process still writes it, front to back (as `xz -dc` writes the base
// image while the build reads it): reads wait for their bytes, a failed writer is an error, a renamed file is found.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { GrowingFileIO, growingFile, settleGrowing, DONE, FAILED } from '../../lib/image/growing-io.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-growing-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const data = randomBytes(3 << 20);
const src = join(dir, 'src.bin');
writeFileSync(src, data);

test('bytes already written read at once, while the file is still short of its final size', () => {
  const out = join(dir, 'short.bin');
  writeFileSync(out, data.subarray(0, 1 << 20));
  const io = GrowingFileIO.open(growingFile(out, join(dir, 'short.final'), data.length));
  assert.is(io.size, data.length, 'the final size, known in advance');
  assert.ok(io.read((1 << 20) - 4096, 4096).equals(data.subarray((1 << 20) - 4096, 1 << 20)));
  io.close();
});

test('a blocked read is released by a separate writer process (no help from this thread)', () => {
  const out = join(dir, 'direct.bin');
  writeFileSync(out, '');
  const file = growingFile(out, join(dir, 'direct.final'), data.length);
  // Another process appends to the file after a pause; this thread only polls its size.
  spawn('sh', ['-c', `sleep 0.3; cat "${src}" >> "${out}"`], { stdio: 'ignore', detached: false });
  const io = GrowingFileIO.open(file);
  const t0 = Date.now();
  const tail = io.read(data.length - 100, 100);
  assert.ok(tail.equals(data.subarray(data.length - 100)));
  assert.ok(Date.now() - t0 >= 200, 'it waited for the writer');
  io.close();
});

test('a writer that failed makes waiting reads fail; bytes already there still read', () => {
  const out = join(dir, 'failed.bin');
  writeFileSync(out, data.subarray(0, 1000));
  const file = growingFile(out, join(dir, 'failed.final'), data.length);
  const io = GrowingFileIO.open(file);
  assert.ok(io.read(0, 1000).equals(data.subarray(0, 1000)));
  settleGrowing(file, FAILED);
  assert.throws(() => io.read(0, 2000), /could not be decompressed/);
  io.close();
});

test('a file renamed into place before it is opened is found under its final name', () => {
  const out = join(dir, 'renamed.tmp');
  const final = join(dir, 'renamed.img');
  writeFileSync(out, data);
  const file = growingFile(out, final, data.length);
  renameSync(out, final);
  settleGrowing(file, DONE);
  assert.not.ok(existsSync(out));
  const io = GrowingFileIO.open(file);
  assert.ok(io.read(data.length - 10, 10).equals(data.subarray(data.length - 10)));
  io.close();
});

test.run();
