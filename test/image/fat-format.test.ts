// formatFat32: our freshly formatted FAT32 volumes pass fsck.fat -n, carry the label mtools sees, take files
// that mtools reads back, are reproducible with a fixed clock, and too-small volumes are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO, SliceIO } from '../../lib/image/io.ts';
import { FatFs, formatFat32 } from '../../lib/image/fat/index.ts';
import { InputError } from '../../lib/errors.ts';
import { fsckClean, mtype, must, type FatImage } from '../helpers/fat-tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-fatfmt-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const clock = () => new Date('2020-02-03T04:05:06Z');

function formatted(name: string, mib: number, clusterSize?: number): FatImage {
  const path = join(dir, name);
  const off = mib > 100 ? 0 : 2048 * 512; // big volumes unpartitioned: fsck.fat then reads the sparse file directly
  const size = mib * 1024 * 1024;
  const io = FileIO.create(path, off + size);
  io.truncate(off + size); // its full size now: sfdisk opens it by path while it is open here (see FileIO.create)
  if (off) must('sfdisk', ['-q', path], `label: dos\nlabel-id: 0x12345678\nstart=2048, size=${size / 512}, type=c\n`);
  const vol = new SliceIO(io, off, size);
  formatFat32(vol, { label: 'system-boot', clusterSize, clock, hiddenSectors: off / 512 });
  const fs = FatFs.open(vol, { clock });
  fs.writeFile('/config.txt', Buffer.from('[pi4]\n'));
  fs.mkdir('/overlays');
  fs.writeFile('/overlays/Big Overlay.dtbo', Buffer.alloc(100_000, 3));
  io.close();
  return { path, offset: off, size, m: `${path}@@${off}` };
}

test('a formatted FAT32 volume passes fsck.fat, has its label, and holds files mtools reads', () => {
  for (const [mib, cs] of [[256, undefined], [300, undefined], [40, undefined]] as const) {
    const img = formatted(`f${mib}.img`, mib, cs);
    fsckClean(img);
    assert.match(must('mdir', ['-i', img.m, '::']), /Volume in drive : is system-boot/);
    assert.ok(mtype(img, '/overlays/Big Overlay.dtbo').equals(Buffer.alloc(100_000, 3)));
    const io = FileIO.open(img.path);
    const fs = FatFs.open(new SliceIO(io, img.offset, img.size));
    assert.is(fs.fatType, 32);
    assert.is(fs.label(), 'system-boot');
    assert.is(fs.clusterSize, cs ?? (mib > 260 ? 4096 : 512));
    io.close();
  }
});

test('formatting is reproducible with a fixed clock', () => {
  const a = readFileSync(formatted('r1.img', 40, 512).path);
  const b = readFileSync(formatted('r2.img', 40, 512).path);
  assert.ok(a.equals(b));
});

test('a volume too small for FAT32 clusters is an InputError', () => {
  const io = FileIO.create(join(dir, 'small.img'), 16 * 1024 * 1024);
  assert.throws(() => formatFat32(io, { label: 'X' }), (e: unknown) => e instanceof InputError && /too few for FAT32/.test((e as Error).message));
  assert.throws(() => formatFat32(io, { label: 'this label is too long' }), (e: unknown) => e instanceof InputError);
  io.close();
});

test.run();
