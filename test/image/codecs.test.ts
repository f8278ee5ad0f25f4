// Every on-disk structure's pure codec, round-tripped on bytes made by the real tools (sfdisk, mkfs.vfat,
// mkfs.ext4): encode(decode(b)) gives b back byte for byte, and decode(encode(v)) gives v back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO, SliceIO } from '../../lib/image/io.ts';
import { decodeMbrSector, encodeMbrSector, decodeMbr } from '../../lib/image/mbr.ts';
import { GPT_HEADER, GPT_ENTRY, readGpt, encodeGpt, gptEntriesRange, guidFromString, guidToString } from '../../lib/image/gpt.ts';
import { decodeBootSector, encodeBootSector, isFat, parseBootSector, FSINFO, fsInfoValid } from '../../lib/image/fat/bpb.ts';
import { decodeSuperblockFields, encodeSuperblockFields, isExt4, readSuperblock } from '../../lib/image/ext4/superblock.ts';
import { decodeGroupDesc, encodeGroupDesc } from '../../lib/image/ext4/groups.ts';
import { decodeInodeFields, encodeInodeFields, XATTR_ENTRY } from '../../lib/image/ext4/inode.ts';
import { EXTENT_HEADER, EXTENT } from '../../lib/image/ext4/blockmap.ts';
import { decodeDirEntry, encodeDirEntry } from '../../lib/image/ext4/directory.ts';
import { SHORT_ENTRY, LFN_ENTRY, ATTR_LFN, lfnEntries, lfnUnits } from '../../lib/image/fat/dirent.ts';
import { layout } from '../../lib/image/layout.ts';
import { Ext4Fs } from '../../lib/image/ext4/fs.ts';
import { CorruptImageError } from '../../lib/errors.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-codecs-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
const run = (cmd: string, args: string[], input?: string) => execFileSync(cmd, args, { env, input, stdio: ['pipe', 'pipe', 'pipe'] });

function file(name: string, mib: number): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, mib * 2 ** 20);
  return p;
}
const bytes = (p: string, off: number, len: number) => readFileSync(p).subarray(off, off + len);

/** encode(decode(b)) == b and decode(encode(decode(b))) == decode(b). */
function roundTrip<T>(what: string, b: Buffer, decode: (b: Buffer) => T, encode: (v: T) => Buffer): T {
  const v = decode(b);
  assert.ok(encode(v).equals(b), `${what}: encode(decode(b)) == b`);
  assert.equal(decode(encode(v)), v, `${what}: decode(encode(v)) == v`);
  return v;
}

test('a layout refuses gaps and overlaps (it must cover every byte once)', () => {
  assert.throws(() => layout('gap', 8, { a: [0, 'u32'], b: [5, 'u16'] }), /gap or overlap/);
  assert.throws(() => layout('short', 8, { a: [0, 'u32'] }), /size is 8/);
});

test('MBR sector: sfdisk (dos) round-trips; decodeMbr gives image offsets when the disk is inside a file', () => {
  const img = file('dos.img', 8);
  run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img], 'label: dos\nlabel-id: 0x5452574f\nstart=2048, size=4096, type=c, bootable\nstart=6144, type=83\n');
  const s = bytes(img, 0, 512);
  const m = roundTrip('MBR', s, (b) => decodeMbrSector(b), encodeMbrSector);
  assert.is(m.diskSignature, 0x5452574f);
  assert.is(m.entries[0].type, 0x0c);
  const damaged = Buffer.from(s);
  damaged[510] = 0;
  assert.throws(() => decodeMbr(damaged, { name: 'x', diskSize: 8 << 20, at: 4096 }), (e: unknown) => e instanceof CorruptImageError && e.offset === 4096 + 510);
});

test('GPT header and entries: sfdisk (gpt) round-trips, and encodeGpt rewrites both copies byte for byte', () => {
  const img = file('gpt.img', 8);
  run('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img],
    'label: gpt\nlabel-id: 01234567-89AB-CDEF-0123-456789ABCDEF\nstart=2048, size=4096, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7, name="system-boot", uuid=11111111-2222-3333-4444-555555555555\nstart=6144, type=L, name="writable", uuid=66666666-7777-8888-9999-AAAAAAAAAAAA\n');
  const h = roundTrip('GPT header', bytes(img, 512, 512), (b) => GPT_HEADER.decode(b), (v) => GPT_HEADER.encode(v));
  const r = gptEntriesRange(h);
  const entries = bytes(img, r.offset, r.length);
  for (let i = 0; i < 3; i++) roundTrip(`GPT entry ${i}`, entries.subarray(i * 128, (i + 1) * 128), (b) => GPT_ENTRY.decode(b), (v) => GPT_ENTRY.encode(v));
  assert.is(guidToString(guidFromString('01234567-89ab-cdef-0123-456789abcdef')), '01234567-89ab-cdef-0123-456789abcdef');
  const io = FileIO.open(img);
  const g = readGpt(io);
  io.close();
  const all = readFileSync(img);
  for (const c of encodeGpt(g, all.length / 512)) {
    assert.ok(c.bytes.equals(all.subarray(c.offset, c.offset + c.bytes.length)), `GPT chunk at ${c.offset} as sfdisk wrote it`);
  }
  // sgdisk agrees that what encodeGpt writes is a valid GPT.
  const copy = file('gpt-copy.img', 8);
  const out = FileIO.open(copy, { write: true });
  out.write(0, all.subarray(0, 512)); // the protective MBR
  for (const c of encodeGpt(g, all.length / 512)) out.write(c.offset, c.bytes);
  out.close();
  assert.match(run('sgdisk', ['-v', copy]).toString(), /No problems found/);
});

test('FAT boot sector: mkfs.vfat FAT32 and FAT16 round-trip; isFat tells them from ext4', () => {
  for (const [fat, mib] of [['32', 40], ['16', 16], ['12', 2]] as const) {
    const img = file(`fat${fat}.img`, mib);
    run('mkfs.vfat', ['-F', fat, '-n', 'SYSTEM-BOOT', '--invariant', img]);
    const s = bytes(img, 0, 512);
    const v = roundTrip(`FAT${fat} boot sector`, s, (b) => decodeBootSector(b), encodeBootSector);
    assert.is(v.kind, fat === '32' ? 'fat32' : 'fat16');
    assert.is(v.volumeLabel.toString('latin1'), 'SYSTEM-BOOT');
    assert.ok(isFat(s), `isFat(FAT${fat})`);
    assert.not.ok(isExt4(bytes(img, 0, 2048)));
    const io = FileIO.open(img);
    assert.is(parseBootSector(io).fatType, Number(fat));
    io.close();
    if (v.kind === 'fat32') {
      const fsi = roundTrip('FSInfo', bytes(img, v.fsInfoSector * 512, 512), (b) => FSINFO.decode(b), (x) => FSINFO.encode(x));
      assert.ok(fsInfoValid(fsi), 'mkfs.vfat wrote the three FSInfo signatures');
    }
  }
});

test('FAT directory entries: the short and long-name entries mtools wrote round-trip, and lfnEntries writes them alike', () => {
  const img = file('fat-dir.img', 40);
  run('mkfs.vfat', ['-F', '32', '--invariant', img]);
  const src = join(dir, 'A long file name.txt');
  writeFileSync(src, 'hello\n');
  run('mcopy', ['-i', img, src, '::/']);
  const io = FileIO.open(img);
  const g = parseBootSector(io);
  io.close();
  const root = bytes(img, g.dataOffset + (g.rootCluster - 2) * g.clusterSize, g.clusterSize);
  const slots = [];
  for (let o = 0; o < root.length && root[o] !== 0; o += 32) slots.push(root.subarray(o, o + 32));
  assert.ok(slots.length >= 3, `a long name takes 2 entries + the short one (${slots.length})`);
  for (const [i, e] of slots.entries()) {
    if ((e[11] & 0x3f) === ATTR_LFN) roundTrip(`LFN slot ${i}`, e, (b) => LFN_ENTRY.decode(b), (v) => LFN_ENTRY.encode(v));
    else roundTrip(`short slot ${i}`, e, (b) => SHORT_ENTRY.decode(b), (v) => SHORT_ENTRY.encode(v));
  }
  const short = slots[slots.length - 1];
  const ours = lfnEntries('A long file name.txt', SHORT_ENTRY.decode(short).name);
  assert.equal(ours.map((e) => lfnUnits(e)), slots.slice(0, -1).map((e) => lfnUnits(e)));
  assert.ok(Buffer.concat(ours).equals(Buffer.concat(slots.slice(0, -1))), 'lfnEntries == what mtools wrote');
});

test('ext4 superblock, group descriptors (32 and 64 bytes), inode, extent header, directory entries round-trip', () => {
  for (const features of ['64bit', '^64bit']) {
    const tree = join(dir, `tree-${features}`);
    mkdirSync(join(tree, 'etc'), { recursive: true });
    writeFileSync(join(tree, 'etc', 'hostname'), 'node1\n');
    const img = file(`ext4-${features}.img`, 16);
    run('mkfs.ext4', ['-q', '-F', '-L', 'writable', '-O', features, '-d', tree, img]);
    const sbBytes = bytes(img, 1024, 1024);
    assert.ok(isExt4(bytes(img, 0, 2048)));
    assert.not.ok(isFat(bytes(img, 0, 512)));
    const f = roundTrip('superblock', sbBytes, (b) => decodeSuperblockFields(b), encodeSuperblockFields);
    assert.is(f.volumeName.toString('latin1').replace(/\0+$/, ''), 'writable');
    const io = FileIO.open(img);
    const sb = readSuperblock(io);
    io.close();
    const wide = sb.descSize >= 64;
    assert.is(wide, features === '64bit');
    const gdtAt = (sb.firstDataBlock + 1) * sb.blockSize;
    const gd = roundTrip(`group descriptor (${sb.descSize})`, bytes(img, gdtAt, sb.descSize), (b) => decodeGroupDesc(b, wide), encodeGroupDesc);
    // The root directory: inode 2 in group 0's inode table.
    const inodeAt = gd.inodeTableLo * sb.blockSize + (2 - 1) * sb.inodeSize;
    const ino = roundTrip('inode', bytes(img, inodeAt, sb.inodeSize), decodeInodeFields, encodeInodeFields);
    assert.is(ino.mode & 0o170000, 0o040000);
    const eh = roundTrip('extent header', ino.block.subarray(0, 12), (b) => EXTENT_HEADER.decode(b), (v) => EXTENT_HEADER.encode(v));
    assert.is(eh.magic, 0xf30a);
    assert.is(eh.depth, 0);
    const ext = roundTrip('extent', ino.block.subarray(12, 24), (b) => EXTENT.decode(b), (v) => EXTENT.encode(v));
    const block = bytes(img, ext.startLo * sb.blockSize, sb.blockSize);
    const dot = decodeDirEntry(block, 0);
    assert.is(dot.name.toString(), '.');
    assert.ok(encodeDirEntry(dot).equals(block.subarray(0, dot.recLen)), 'directory entry "." round-trips');
    const dotdot = decodeDirEntry(block, dot.recLen);
    assert.is(dotdot.name.toString(), '..');
    assert.equal(decodeDirEntry(encodeDirEntry(dotdot)), dotdot);
  }
});

test('ext4 in-inode xattr entry (inline_data system.data of /etc) round-trips', () => {
  const tree = join(dir, 'tree-inline');
  mkdirSync(join(tree, 'etc'), { recursive: true });
  writeFileSync(join(tree, 'etc', 'hostname'), 'node1\n');
  const img = file('ext4-inline.img', 16);
  run('mkfs.ext4', ['-q', '-F', '-I', '256', '-O', 'inline_data', '-d', tree, img]);
  const io = FileIO.open(img);
  const sb = readSuperblock(io);
  const n = Ext4Fs.open(io).lookup('/etc');
  io.close();
  assert.ok(n <= sb.inodesPerGroup, 'in group 0');
  const gd = decodeGroupDesc(bytes(img, (sb.firstDataBlock + 1) * sb.blockSize, sb.descSize), sb.descSize >= 64);
  const ino = decodeInodeFields(bytes(img, gd.inodeTableLo * sb.blockSize + (n - 1) * sb.inodeSize, sb.inodeSize));
  assert.ok(ino.flags & 0x10000000, '/etc (one entry) is an inline directory');
  const extra = ino.tail.readUInt16LE(0);
  assert.is(ino.tail.readUInt32LE(extra), 0xea020000, 'in-inode xattr magic');
  const e = roundTrip('xattr entry', ino.tail.subarray(extra + 4, extra + 20), (b) => XATTR_ENTRY.decode(b), (v) => XATTR_ENTRY.encode(v));
  assert.is(e.nameIndex, 7);
  assert.is(ino.tail.toString('latin1', extra + 20, extra + 20 + e.nameLen), 'data');
});

test('errors give image offsets: an ext4 volume inside a disk names the superblock magic at its image offset', () => {
  const img = file('disk-ext4.img', 20);
  run('mkfs.ext4', ['-q', '-F', '-E', `offset=${2048 * 512}`, img, '16M']);
  const disk = FileIO.open(img, { write: true });
  const part = new SliceIO(disk, 2048 * 512, 16 << 20, 'disk p1');
  part.write(1024 + 0x38, Buffer.from([0, 0]));
  assert.throws(() => readSuperblock(part), (e: unknown) => e instanceof CorruptImageError && e.offset === 2048 * 512 + 1024 + 0x38);
  disk.close();
});

test.run();
