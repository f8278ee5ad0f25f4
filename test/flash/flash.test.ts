// flash() to regular files: only mapped ranges are written (the rest stays holes), with our bmap, bmaptool's bmap
// or a map made on the fly; verify catches a flipped byte at its exact offset and a bmap from another image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync, openSync, writeSync, readSync, closeSync, existsSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flash, verifyImage, FlashVerifyError, HEAD_BYTES } from '../../lib/flash/flash.ts';
import { writeBmapFile } from '../../lib/image/bmap.ts';
import { FileIO } from '../../lib/image/io.ts';
import { SafetyError } from '../../lib/errors.ts';
import { hashRangesParallel } from '../../lib/flash/hash-workers.ts';
import { createHash } from 'node:crypto';
import { scatteredImage, MiB } from '../helpers/scattered-image.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-flash-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const SIZE = 48 * MiB;
const data = [
  { start: 600 * 1024, length: 100 * 1024 }, // inside the first MiB, after the MBR
  { start: 2 * MiB, length: 5 * MiB + 123 },
  { start: 20 * MiB - 4096, length: 3 * 4096 },
  { start: SIZE - 8192, length: 8192 },
];
const img = join(dir, 'disk.img');
scatteredImage(img, SIZE, data, { mbr: true });
const allocated = (p: string) => statSync(p).blocks * 512;

test('flash to a new file with our bmap: identical image, holes kept, progress reported', async () => {
  await writeBmapFile(img, `${img}.bmap`);
  const target = join(dir, 'out1.img');
  const phases = new Set<string>();
  const r = await flash({ image: img, target, onProgress: (e) => phases.add(e.phase) });
  execFileSync('cmp', [img, target]);
  assert.is(r.bmap.source, 'file');
  assert.is(r.targetKind, 'file');
  assert.ok(r.verified);
  assert.ok(phases.has('write') && phases.has('verify'));
  assert.ok(allocated(target) < 8 * MiB, `target allocates ${allocated(target)} bytes`);
  assert.is(statSync(target).size, SIZE);
  assert.equal(readdirSync(dir).filter((f) => f.includes('.partial')), [], 'no temporary file left');
});

test('flash without a bmap maps the image on the fly; with bmaptool’s bmap too', async () => {
  const t1 = join(dir, 'out2.img');
  const r = await flash({ image: img, target: t1, bmap: false });
  assert.is(r.bmap.source, 'generated');
  execFileSync('cmp', [img, t1]);
  const theirs = join(dir, 'theirs.bmap');
  execFileSync('bmaptool', ['-q', 'create', '-o', theirs, img], { stdio: ['ignore', 'ignore', 'pipe'] });
  const t2 = join(dir, 'out3.img');
  const r2 = await flash({ image: img, target: t2, bmap: theirs });
  assert.is(r2.bmap.path, theirs);
  execFileSync('cmp', [img, t2]);
});

test('an existing image file is replaced: stale bytes outside the map do not survive', async () => {
  const target = join(dir, 'old.img');
  scatteredImage(target, SIZE, [{ start: 30 * MiB, length: MiB }], { mbr: true });
  await flash({ image: img, target });
  execFileSync('cmp', [img, target]);
});

function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x40;
  writeSync(fd, b, 0, 1, offset);
  closeSync(fd);
}

test('a flipped byte in the target fails verify at exactly that offset', async () => {
  const target = join(dir, 'flip.img');
  await flash({ image: img, target, verify: false });
  await verifyImage({ image: img, target });
  for (const offset of [2 * MiB + 777_777, 510, SIZE - 1]) {
    flipByte(target, offset);
    for (const bmap of [undefined, false] as const) {
      try {
        await verifyImage({ image: img, target, bmap });
        assert.unreachable('verify should fail');
      } catch (err) {
        assert.instance(err, FlashVerifyError);
        assert.is((err as FlashVerifyError).offset, offset);
        assert.match((err as Error).message, `byte offset ${offset}`);
      }
    }
    flipByte(target, offset);
  }
  await verifyImage({ image: img, target });
});

test('verify on worker threads (≥ 64 MiB mapped) also names a flipped byte exactly', async () => {
  const big = join(dir, 'big.img');
  scatteredImage(big, 100 * MiB, [{ start: MiB, length: 40 * MiB }, { start: 50 * MiB, length: 30 * MiB }, { start: 90 * MiB, length: 4096 }]);
  const target = join(dir, 'big-out.img');
  const r = await flash({ image: big, target });
  assert.ok(r.mappedBytes >= 64 * MiB);
  const tasks = [{ start: 0, length: 5 * MiB }, { start: 50 * MiB, length: 30 * MiB + 17 }, { start: 3, length: 1 }];
  const digests = await hashRangesParallel(target, tasks, { workers: 2 });
  const fd = openSync(big, 'r');
  tasks.forEach((t, i) => {
    const b = Buffer.alloc(t.length);
    readSync(fd, b, 0, t.length, t.start);
    assert.is(digests[i], createHash('sha256').update(b).digest('hex'));
  });
  closeSync(fd);
  const offset = 60 * MiB + 12345;
  flipByte(target, offset);
  try {
    await verifyImage({ image: big, target });
    assert.unreachable('verify should fail');
  } catch (err) {
    assert.instance(err, FlashVerifyError);
    assert.is((err as FlashVerifyError).offset, offset);
  }
});

test('a bmap of another image is caught by verify and named', async () => {
  const other = join(dir, 'other.img');
  scatteredImage(other, SIZE, [{ start: 2 * MiB, length: MiB }], { mbr: true });
  await writeBmapFile(other, join(dir, 'other.bmap'));
  try {
    await flash({ image: img, target: join(dir, 'stale.img'), bmap: join(dir, 'other.bmap') });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, FlashVerifyError);
    assert.match((err as Error).message, /does not match .*other\.bmap/);
  }
  assert.not.ok(existsSync(join(dir, 'stale.img')), 'failed flash to a file leaves no target');
});

test('the first MiB is written last', async () => {
  // Watch the write order through the write phase's progress: when 'write' reports the full total, the head must
  // still be empty in the temporary file (it is written after the first fsync).
  const target = join(dir, 'order.img');
  let headEmptyAtEnd: boolean | undefined;
  await flash({
    image: img,
    target,
    verify: false,
    chunk: MiB,
    onProgress: (e) => {
      if (e.phase === 'write' && e.total !== undefined && e.done === e.total && headEmptyAtEnd === undefined) {
        const tmp = readdirSync(dir).find((f) => f.startsWith('.order.img.partial'))!;
        const fd = openSync(join(dir, tmp), 'r');
        const b = Buffer.alloc(HEAD_BYTES);
        readSync(fd, b, 0, HEAD_BYTES, 0);
        closeSync(fd);
        headEmptyAtEnd = b.every((x) => x === 0);
      }
    },
  });
  assert.is(headEmptyAtEnd, true);
  execFileSync('cmp', [img, target]);
});

test('refuses to write the image over itself, and a non-image file without consent', async () => {
  try {
    await flash({ image: img, target: img, yes: true });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, SafetyError);
    assert.match((err as Error).message, /source image itself/);
  }
  const notes = join(dir, 'notes.txt');
  execFileSync('sh', ['-c', `echo important > ${notes}`]);
  try {
    await flash({ image: img, target: notes });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, SafetyError);
    assert.match((err as Error).message, /confirmation needed/);
  }
  let asked = false;
  try {
    await flash({ image: img, target: notes, confirm: () => ((asked = true), false) });
    assert.unreachable();
  } catch (err) {
    assert.ok(asked);
    assert.match((err as Error).message, /cancelled/);
  }
  assert.is(execFileSync('cat', [notes]).toString(), 'important\n');
  await flash({ image: img, target: notes, yes: true });
  execFileSync('cmp', [img, notes]);
});


test('on-the-fly mapping skips holes (SEEK_DATA) and maps exactly what reading every byte maps', async () => {
  const { dataExtents } = await import('../../lib/image/extents.ts');
  const ext = dataExtents(img, { size: SIZE });
  assert.ok(ext, 'perl and SEEK_DATA are available here');
  // Every data byte lies inside an extent, and the big holes (7-20 MiB, 20-48 MiB) are not read.
  for (const d of data) assert.ok(ext!.some((x) => x.start <= d.start && d.start + d.length <= x.start + x.length), `extent holding ${d.start}`);
  const extentBytes = ext!.reduce((s, x) => s + x.length, 0);
  assert.ok(extentBytes < 12 * MiB, `extents cover ${extentBytes} bytes of ${SIZE}`);
  const t1 = join(dir, 'fly-seek.img');
  const r1 = await flash({ image: img, target: t1, bmap: false });
  const t2 = join(dir, 'fly-read.img');
  process.env.PI_IMAGE_NO_SEEK_DATA = '1';
  let r2;
  try {
    assert.is(dataExtents(img), undefined, 'the fallback is forced');
    r2 = await flash({ image: img, target: t2, bmap: false });
  } finally {
    delete process.env.PI_IMAGE_NO_SEEK_DATA;
  }
  execFileSync('cmp', [img, t1]);
  execFileSync('cmp', [img, t2]);
  assert.is(r1.mappedBytes, r2.mappedBytes);
  assert.is(r1.bmap.ranges, r2.bmap.ranges);
  assert.ok(r1.verified && r2.verified);
});

test('verify of an on-the-fly map compares with the image on worker threads and names a flipped byte', async () => {
  const { verifyTarget } = await import('../../lib/flash/flash.ts');
  const { compareRangesParallel } = await import('../../lib/flash/hash-workers.ts');
  const big = join(dir, 'big2.img');
  scatteredImage(big, 100 * MiB, [{ start: MiB, length: 40 * MiB }, { start: 50 * MiB, length: 30 * MiB }, { start: 90 * MiB, length: 4096 }]);
  const target = join(dir, 'big2-out.img');
  const r = await flash({ image: big, target, bmap: false });
  assert.ok(r.verified && r.mappedBytes >= 64 * MiB);
  const offset = 70 * MiB + 999;
  flipByte(target, offset);
  const ranges = [{ first: 256, last: 256 * 41 - 1 }, { first: 50 * 256, last: 80 * 256 - 1 }, { first: 90 * 256, last: 90 * 256 }];
  assert.equal(await compareRangesParallel(target, big, ranges.map((x) => ({ start: x.first * 4096, length: (x.last - x.first + 1) * 4096 })), { workers: 2 }), [true, false, true]);
  const image = FileIO.open(big);
  try {
    await verifyTarget(image, target, target, ranges, { blockSize: 4096, imageSize: 100 * MiB, checksumType: 'none' });
    assert.unreachable('verify should fail');
  } catch (err) {
    assert.instance(err, FlashVerifyError);
    assert.is((err as FlashVerifyError).offset, offset);
  } finally {
    image.close();
  }
});
test('a big file target is verified while written (workers trail the writer) and a wrong bmap is still caught', async () => {
  const big = join(dir, 'big3.img');
  const other = join(dir, 'big3-other.img');
  const parts = [{ start: MiB / 2, length: 40 * MiB }, { start: 50 * MiB, length: 30 * MiB }, { start: 90 * MiB, length: 4096 }];
  scatteredImage(big, 100 * MiB, parts);
  await writeBmapFile(big, `${big}.bmap`);
  const target = join(dir, 'big3-out.img');
  const r = await flash({ image: big, target, chunk: MiB });
  assert.ok(r.verified && r.mappedBytes >= 64 * MiB);
  execFileSync('cmp', [big, target]);
  scatteredImage(other, 100 * MiB, parts);
  flipByte(other, 60 * MiB + 5);
  try {
    await flash({ image: other, target: join(dir, 'big3-bad.img'), bmap: `${big}.bmap`, chunk: MiB });
    assert.unreachable('verify should fail');
  } catch (err) {
    assert.instance(err, FlashVerifyError);
    assert.match((err as Error).message, /does not match .*big3\.img\.bmap in blocks 12800-20479/);
  }
  assert.not.ok(existsSync(join(dir, 'big3-bad.img')));
  assert.equal(readdirSync(dir).filter((f) => f.includes('.partial')), [], 'no temporary file left');
});

test.run();
