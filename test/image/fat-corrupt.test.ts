// Corrupt FAT volumes (made by mkfs.vfat + mcopy, then damaged byte by byte) give CorruptImageError with a byte
// offset, quickly — never a hang, never garbage data.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO, SliceIO, type BlockIO } from '../../lib/image/io.ts';
import { FatFs } from '../../lib/image/fat/index.ts';
import { CorruptImageError } from '../../lib/errors.ts';
import { makeFat, must, type FatImage } from '../helpers/fat-tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-fatbad-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** A FAT image (at a partition offset) holding a 5-cluster file /big.bin and a directory /d with a file. */
function fixture(name: string, fat: 16 | 32): { img: FatImage; io: FileIO; vol: BlockIO; fs: FatFs } {
  const img = makeFat(join(dir, `${name}.img`), { fat, kib: fat === 32 ? 100_000 : 20_000, offsetSectors: 2048, spc: fat === 32 ? 1 : 4 });
  const src = join(dir, `${name}-big.bin`);
  writeFileSync(src, Buffer.alloc(5 * 2048, 9));
  must('mcopy', ['-i', img.m, src, '::/big.bin']);
  must('mmd', ['-i', img.m, '::/d']);
  must('mcopy', ['-i', img.m, src, '::/d/inner.bin']);
  const io = FileIO.open(img.path, { write: true });
  const vol = new SliceIO(io, img.offset, img.size, `${name}.img p1`);
  return { img, io, vol, fs: FatFs.open(vol) };
}

/** Set FAT entry `n` to `v` in every FAT copy, behind the engine's back. */
function poke(vol: BlockIO, fs: FatFs, n: number, v: number): void {
  const g = fs.geometry;
  for (let f = 0; f < g.numFats; f++) {
    const base = g.fatOffset + f * g.fatBytes;
    const b = Buffer.alloc(g.fatType === 32 ? 4 : 2);
    if (g.fatType === 32) b.writeUInt32LE(v, 0);
    else b.writeUInt16LE(v, 0);
    vol.write(base + (n * g.fatType) / 8, b);
  }
}

function corrupt(fn: () => unknown, re: RegExp, minOffset = 0): CorruptImageError {
  const t0 = Date.now();
  let caught: unknown;
  try {
    const r = fn();
    if (r && typeof (r as Iterable<unknown>)[Symbol.iterator] === 'function') for (const _ of r as Iterable<unknown>) void _;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof CorruptImageError, `expected CorruptImageError, got ${caught}`);
  const e = caught as CorruptImageError;
  assert.match(e.message, re);
  assert.type(e.offset, 'number');
  assert.ok(e.offset! >= minOffset, `offset ${e.offset} is an image offset`);
  assert.ok(Date.now() - t0 < 2000, 'fails fast');
  return e;
}

for (const fat of [16, 32] as const) {
  test(`FAT${fat}: a cluster-chain loop is a typed error for read, stream, overwrite and delete`, () => {
    const { io, vol, fs } = fixture(`loop${fat}`, fat);
    const first = fs.stat('/big.bin').firstCluster;
    const n = Math.ceil((5 * 2048) / fs.clusterSize);
    poke(vol, fs, first + n - 1, first + 1); // last cluster links back into the chain
    const fresh = FatFs.open(vol);
    const e = corrupt(() => fresh.readFile('/big.bin'), /loops back|longer than the file size/, 2048 * 512);
    const g = fresh.geometry;
    assert.ok(e.offset! >= 1048576 + g.fatOffset && e.offset! < 1048576 + g.fatOffset + g.fatBytes, 'offset is in the FAT');
    corrupt(() => fresh.readFileChunks('/big.bin'), /loops back|longer than/);
    corrupt(() => fresh.writeFile('/big.bin', Buffer.alloc(10)), /loops back/);
    corrupt(() => fresh.unlink('/big.bin'), /loops back/);
    io.close();
  });

  test(`FAT${fat}: out-of-range and free links inside a chain are typed errors`, () => {
    const { io, vol, fs } = fixture(`range${fat}`, fat);
    const first = fs.stat('/big.bin').firstCluster;
    poke(vol, fs, first + 1, fat === 32 ? 0x0ffffff0 : 0xfff0);
    corrupt(() => FatFs.open(vol).readFile('/big.bin'), /outside 2\.\./);
    poke(vol, fs, first + 1, 0);
    corrupt(() => FatFs.open(vol).readFile('/big.bin'), /free cluster/);
    io.close();
  });

  test(`FAT${fat}: a directory entry pointing out of range is a typed error naming the entry`, () => {
    const { io, vol, fs } = fixture(`dirent${fat}`, fat);
    // Find the short entry of BIG.BIN in the root directory and point it far beyond the volume.
    const g = fs.geometry;
    const rootOff = fat === 32 ? g.dataOffset + (g.rootCluster - 2) * g.clusterSize : g.rootDirOffset;
    const root = vol.read(rootOff, 32 * 16);
    let slot = -1;
    for (let i = 0; i < 16; i++) if (root.toString('latin1', i * 32, i * 32 + 11) === 'BIG     BIN') slot = i;
    assert.ok(slot >= 0);
    const b = Buffer.alloc(2);
    b.writeUInt16LE(0xfff0, 0);
    vol.write(rootOff + slot * 32 + 26, b);
    if (fat === 32) vol.write(rootOff + slot * 32 + 20, Buffer.from([0xff, 0x0f])); // high word too
    const e = corrupt(() => FatFs.open(vol).readdir('/'), /big\.bin.*outside/i);
    assert.is(e.offset, 1048576 + rootOff + slot * 32);
    io.close();
  });
}

test('FAT32: a loop in a directory chain is a typed error, not a hang', () => {
  const { io, vol, fs } = fixture('dirloop', 32);
  const d = fs.stat('/d').firstCluster;
  poke(vol, fs, d, d);
  corrupt(() => FatFs.open(vol).readdir('/d'), /loops back/);
  corrupt(() => FatFs.open(vol).readFile('/d/inner.bin'), /loops back/);
  io.close();
});

test('a bad boot sector signature is a typed error at byte 510 of the volume', () => {
  const { io, vol } = fixture('sig', 16);
  vol.write(510, Buffer.from([0x00, 0x00]));
  const e = corrupt(() => FatFs.open(vol), /signature/);
  assert.is(e.offset, 1048576 + 510);
  io.close();
});

test('a truncated volume is a typed error', () => {
  const img = makeFat(join(dir, 'trunc.img'), { fat: 16, kib: 20_000 });
  truncateSync(img.path, 10_000_000);
  const io = FileIO.open(img.path);
  corrupt(() => FatFs.open(io), /claims \d+ bytes/);
  io.close();
});

test('garbage that is not FAT at all is a typed error', () => {
  const p = join(dir, 'zero.img');
  writeFileSync(p, Buffer.alloc(1 << 20));
  const io = FileIO.open(p);
  corrupt(() => FatFs.open(io), /not a FAT file system/);
  io.close();
});

test.run();
