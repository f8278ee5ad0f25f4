// FAT12/16/32 engine against the real tools: volumes made by mkfs.vfat (also inside an sfdisk'd disk at an
// offset), trees written by mtools and read by us, our writes checked by fsck.fat -n and read back by mtools.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { FileIO, SliceIO } from '../../lib/image/io.ts';
import { FatFs, NoSpaceError, type FatEntry } from '../../lib/image/fat/index.ts';
import { makeFat, fsckClean, mdirTree, mtype, mcopyAll, must, prng, type FatImage } from '../helpers/fat-tools.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-fat-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const CLOCK = () => new Date('2020-02-03T04:05:06Z');

function open(img: FatImage, clock = CLOCK): { fs: FatFs; io: FileIO } {
  const io = FileIO.open(img.path, { write: true });
  const vol = img.offset ? new SliceIO(io, img.offset, img.size, `${img.path} p1`) : io;
  return { fs: FatFs.open(vol, { clock }), io };
}

/** Every path of our tree, in mdir -/ -b form ('/dir/' for directories). */
function ourTree(fs: FatFs, path = '/'): string[] {
  const out: string[] = [];
  for (const e of fs.readdir(path)) {
    const p = `${path === '/' ? '' : path}/${e.name}`;
    if (e.isDirectory) out.push(`${p}/`, ...ourTree(fs, p));
    else out.push(p);
  }
  return out.sort();
}

function bytesFree(img: FatImage): number {
  const m = /([\d ]+) bytes free/.exec(must('mdir', ['-i', img.m, '::']));
  return Number(m![1].replace(/ /g, ''));
}

const rand = prng(42);
function blob(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (rand() * 256) | 0;
  return b;
}

/** A source tree with every kind of name, copied in with mcopy -s. */
function sourceTree(root: string, manyInRoot: boolean): Map<string, Buffer> {
  const files = new Map<string, Buffer>([
    ['/config.txt', Buffer.from('[pi4]\nkernel=uboot_rpi_4.bin\n')],
    ['/README', blob(700)],
    ['/CMDLINE.TXT', Buffer.from('console=tty1 root=LABEL=writable\n')],
    ['/Long File Name With Spaces.dat', blob(5000)],
    ['/MixedCase.Txt', Buffer.from('mixed')],
    ['/empty.txt', Buffer.alloc(0)],
    ['/overlays/vc4-fkms-v3d.dtbo', blob(3000)],
    ['/overlays/README', blob(12)],
    ['/a/b/c/deep.bin', blob(50_000)],
    ['/dir with spaces/x.y.z.txt', blob(1)],
  ]);
  for (let i = 0; i < 40; i++) files.set(`/many/a rather long file name number ${i}.txt`, blob(i * 37));
  if (manyInRoot) for (let i = 0; i < 30; i++) files.set(`/root-level long name ${i}.bin`, blob(100));
  for (const [p, data] of files) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), data);
  }
  return files;
}

const kinds = [
  { fat: 12 as const, kib: 4000, offsetSectors: 0 },
  { fat: 16 as const, kib: 40_000, offsetSectors: 2048 },
  { fat: 32 as const, kib: 300_000, offsetSectors: 2048, spc: 1 },
];

for (const k of kinds) {
  test(`FAT${k.fat}${k.offsetSectors ? ' at an offset' : ''}: reads agree with mtools for every file of a tree`, () => {
    const img = makeFat(join(dir, `r${k.fat}.img`), k);
    const src = join(dir, `src${k.fat}`);
    const files = sourceTree(src, k.fat === 32);
    must('mcopy', ['-s', '-i', img.m, ...readdirSync(src).map((n) => join(src, n)), '::/']);
    const { fs, io } = open(img);
    try {
      assert.is(fs.fatType, k.fat);
      assert.is(fs.label(), 'TESTVOL');
      assert.equal(ourTree(fs), mdirTree(img));
      for (const [p, data] of files) {
        const ours = fs.readFile(p);
        assert.ok(ours.equals(data), `${p} differs from source`);
        assert.ok(ours.equals(mtype(img, p)), `${p} differs from mtype`);
        assert.ok(Buffer.concat([...fs.readFileChunks(p)]).equals(data), `${p} streamed`);
      }
      // Case-insensitive lookups, by long and by short name; lowercase flags reported as such.
      assert.ok(fs.readFile('/CONFIG.TXT').equals(files.get('/config.txt')!));
      const cfg = fs.stat('/config.txt');
      assert.is(cfg.name, 'config.txt');
      assert.is(cfg.shortName, 'CONFIG.TXT');
      assert.is(fs.stat('/Long File Name With Spaces.dat').shortName, 'LONGFI~1.DAT');
      assert.ok(fs.exists('/LONGFI~1.DAT'));
      assert.not.ok(fs.exists('/nope.txt'));
      assert.is(fs.freeBytes(), bytesFree(img));
    } finally {
      io.close();
    }
    rmSync(src, { recursive: true, force: true });
  });

  test(`FAT${k.fat}${k.offsetSectors ? ' at an offset' : ''}: writes pass fsck.fat and read back with mtools`, () => {
    const img = makeFat(join(dir, `w${k.fat}.img`), k);
    const { fs, io } = open(img);
    const expect = new Map<string, Buffer>();
    const put = (p: string, d: Buffer) => {
      fs.writeFile(p, d);
      expect.set(p, d);
    };
    try {
      const free0 = fs.freeBytes();
      put('/config.txt', Buffer.from('hello'));
      put('/Long File Name.txt', blob(3 * fs.clusterSize + 5));
      put('/Readme.md', blob(10));
      put('/café Ünïcode ☃.txt', blob(20));
      fs.mkdir('/overlays');
      fs.mkdir('/overlays/deeper dir');
      put('/overlays/deeper dir/file.bin', blob(2 * fs.clusterSize));
      put('/longname-file-1.txt', blob(1));
      put('/longname-file-2.txt', blob(2));
      // Overwrite longer, then shorter, then empty, then again non-empty.
      put('/config.txt', blob(5 * fs.clusterSize + 1));
      put('/Long File Name.txt', blob(fs.clusterSize - 1));
      put('/Readme.md', Buffer.alloc(0));
      put('/Readme.md', blob(100));
      // Rename within a directory (case only and new name), across directories, and a directory move.
      fs.rename('/longname-file-2.txt', '/LONGNAME-FILE-2.TXT');
      expect.set('/LONGNAME-FILE-2.TXT', expect.get('/longname-file-2.txt')!);
      expect.delete('/longname-file-2.txt');
      fs.rename('/longname-file-1.txt', '/overlays/moved.txt');
      expect.set('/overlays/moved.txt', expect.get('/longname-file-1.txt')!);
      expect.delete('/longname-file-1.txt');
      fs.mkdir('/sub');
      put('/sub/inner.txt', blob(7));
      fs.rename('/sub', '/overlays/sub2');
      expect.set('/overlays/sub2/inner.txt', expect.get('/sub/inner.txt')!);
      expect.delete('/sub/inner.txt');
      // A directory that grows past one cluster.
      for (let i = 0; i < 70; i++) put(`/overlays/growing directory entry number ${i}.dtbo`, blob(i));
      fs.mkdir('/gone');
      fs.rmdir('/gone');
      assert.throws(() => fs.rmdir('/overlays'), /not empty/);

      fsckClean(img);
      const back = mcopyAll(img);
      assert.equal([...back.keys()].sort(), [...expect.keys()].sort());
      for (const [p, d] of expect) assert.ok(back.get(p)!.equals(d), `mtools reads ${p} back differently`);
      assert.equal(ourTree(fs), mdirTree(img));
      assert.ok(mtype(img, '/overlays/sub2/inner.txt').equals(expect.get('/overlays/sub2/inner.txt')!));

      // Short names: lowercase 8.3 gets NT flags (no long name shown by mdir), collisions get ~N tails.
      const listing = must('mdir', ['-i', img.m, '::/']);
      assert.match(listing, /^config\s+txt\s+\d+\s+2020-02-03\s+4:05\s*$/m);
      assert.match(listing, /^README\s+MD\s+100 .* Readme\.md$/m);
      assert.is(fs.stat('/LONGNAME-FILE-2.TXT').shortName, 'LONGNA~2.TXT');
      const st: FatEntry = fs.stat('/config.txt');
      assert.is(st.mtime.toISOString(), '2020-02-03T04:05:06.000Z');
      assert.is(fs.freeBytes(), bytesFree(img));

      // Both FATs byte-identical.
      const g = fs.geometry;
      assert.ok(io.read(img.offset + g.fatOffset, g.fatBytes).equals(io.read(img.offset + g.fatOffset + g.fatBytes, g.fatBytes)));

      // Deleting everything gives all the space back.
      for (const p of expect.keys()) fs.unlink(p);
      for (const d of ['/overlays/sub2', '/overlays/deeper dir', '/overlays']) fs.rmdir(d);
      fsckClean(img);
      assert.equal(mdirTree(img), []);
      // Everything but the clusters a FAT32 root directory grew by comes back (directories never shrink).
      if (k.fat === 32) assert.ok(free0 - fs.freeBytes() <= 2 * fs.clusterSize && fs.freeBytes() <= free0);
      else assert.is(fs.freeBytes(), free0);
      assert.is(fs.freeBytes(), bytesFree(img));
    } finally {
      io.close();
    }
  });
}


test('FAT12/16 fixed root directory: full is a NoSpaceError, and the volume stays clean', () => {
  const img = makeFat(join(dir, 'root.img'), { fat: 12, kib: 2000, rootEntries: 16 });
  const { fs, io } = open(img);
  try {
    let made = 0;
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) {
          fs.writeFile(`/F${i}.TXT`, Buffer.from('x'));
          made++;
        }
      },
      (e: unknown) => e instanceof NoSpaceError && /root directory is full/.test((e as Error).message),
    );
    assert.ok(made >= 14 && made <= 16, `made ${made}`);
    assert.throws(() => fs.mkdir('/more'), (e: unknown) => e instanceof NoSpaceError);
    fs.writeFile('/F0.TXT', Buffer.alloc(5000, 1)); // overwriting still works, and flushes the FAT
    fsckClean(img);
    assert.is(fs.freeBytes(), bytesFree(img));
  } finally {
    io.close();
  }
});

test('a full volume is a NoSpaceError and nothing is half-written', () => {
  const img = makeFat(join(dir, 'full.img'), { fat: 16, kib: 16_000 });
  const { fs, io } = open(img);
  try {
    const before = fs.freeBytes();
    assert.throws(() => fs.writeFile('/big.bin', Buffer.alloc(before + fs.clusterSize)), (e: unknown) => e instanceof NoSpaceError);
    assert.not.ok(fs.exists('/big.bin'));
    fs.writeFile('/fits.bin', Buffer.alloc(before, 7));
    assert.is(fs.freeBytes(), 0);
    fsckClean(img);
    assert.ok(mtype(img, '/fits.bin').equals(Buffer.alloc(before, 7)));
  } finally {
    io.close();
  }
});

test('a file streamed in as chunks (over fragmented free space, overwriting a longer one) reads back with mtype', () => {
  const img = makeFat(join(dir, 'stream.img'), { fat: 32, kib: 40_000, offsetSectors: 2048 });
  const { fs, io } = open(img);
  try {
    // Fragment the free space: every other small file is deleted.
    for (let i = 0; i < 20; i++) fs.writeFile(`/frag${i}.bin`, Buffer.alloc(fs.clusterSize * 3, i));
    for (let i = 0; i < 20; i += 2) fs.unlink(`/frag${i}.bin`);
    const data = blob(1_000_003);
    const sizes = [1, 4095, 4097, 65536, 333_333];
    const chunks = function* () {
      let at = 0;
      for (let i = 0; at < data.length; i++) {
        const n = Math.min(sizes[i % sizes.length], data.length - at);
        yield data.subarray(at, at + n);
        at += n;
      }
    };
    fs.writeFile('/vmlinux', blob(2_500_000)); // longer: the streamed write shrinks it
    fs.writeFile('/vmlinux', { size: data.length, chunks: chunks() });
    fsckClean(img);
    assert.ok(mtype(img, '/vmlinux').equals(data));
    assert.ok(fs.readFile('/vmlinux').equals(data));
    assert.throws(() => fs.writeFile('/short.bin', { size: 10, chunks: [Buffer.alloc(5)] }), /gave 5 bytes, not the 10/);
    assert.not.ok(fs.exists('/short.bin'), 'a short source leaves no file');
    fsckClean(img);
  } finally {
    io.close();
  }
});

test('with a fixed clock the same operations give byte-identical images', () => {
  const sums = [0, 1].map((n) => {
    const img = makeFat(join(dir, `rep${n}.img`), { fat: 32, kib: 100_000, offsetSectors: 2048 });
    const { fs, io } = open(img);
    fs.writeFile('/config.txt', Buffer.from('a'));
    fs.mkdir('/overlays');
    fs.writeFile('/overlays/Some Overlay.dtbo', Buffer.alloc(10_000, 3));
    fs.writeFile('/config.txt', Buffer.alloc(9000, 1));
    fs.rename('/config.txt', '/overlays/config.txt');
    fs.unlink('/overlays/Some Overlay.dtbo');
    io.close();
    return createHash('sha256').update(readFileSync(img.path)).digest('hex');
  });
  assert.is(sums[0], sums[1]);
});

test('usedRanges covers the metadata and every allocated cluster, and nothing else', () => {
  const img = makeFat(join(dir, 'used.img'), { fat: 32, kib: 100_000 });
  const { fs, io } = open(img);
  try {
    fs.writeFile('/a.bin', Buffer.alloc(3 * fs.clusterSize, 1));
    fs.writeFile('/b.bin', Buffer.alloc(fs.clusterSize, 2));
    fs.unlink('/a.bin');
    const r = fs.usedRanges();
    const g = fs.geometry;
    assert.is(r[0].start, 0);
    const total = r.reduce((s, x) => s + x.length, 0);
    // metadata + root dir cluster + b.bin's cluster
    assert.is(total, g.dataOffset + 2 * fs.clusterSize);
    assert.is(fs.totalBytes() - fs.freeBytes(), 2 * fs.clusterSize);
  } finally {
    io.close();
  }
});

test('zeroFreed: clusters a file gives up (shrinking, unlinked) read as zeros; fsck.fat stays clean', () => {
  const img = makeFat(join(dir, 'zero-freed.img'), { fat: 32, kib: 100_000 });
  const io = FileIO.open(img.path, { write: true });
  const vol = img.offset ? new SliceIO(io, img.offset, img.size, `${img.path} p1`) : io;
  try {
    const fs = FatFs.open(vol, { clock: CLOCK, zeroFreed: true });
    const cs = fs.clusterSize;
    fs.writeFile('/seed', Buffer.alloc(4 * cs, 0xaa));
    fs.writeFile('/gone', Buffer.alloc(2 * cs, 0xbb));
    const before = fs.usedRanges();
    fs.writeFile('/seed', Buffer.alloc(cs, 0xcc)); // three clusters freed
    fs.unlink('/gone'); // two more
    const after = fs.usedRanges();
    const inside = (off: number) => after.some((r) => off >= r.start && off < r.start + r.length);
    let freedBytes = 0;
    for (const r of before) {
      for (let off = r.start; off < r.start + r.length; off += cs) {
        if (inside(off)) continue;
        freedBytes += cs;
        assert.ok(vol.read(off, cs).equals(Buffer.alloc(cs)), `freed cluster at ${off} is zero`);
      }
    }
    assert.is(freedBytes, 5 * cs, 'five clusters were freed');
    assert.ok(fs.readFile('/seed').equals(Buffer.alloc(cs, 0xcc)));
  } finally {
    io.close();
  }
  fsckClean(img);
});

test.run();
