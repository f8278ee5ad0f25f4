// ext4 reader on damaged filesystems: bad magic, a truncated image, a directory entry pointing past the inode
// count, a rec_len overrunning its block, an extent pointing past the end. Each gives a typed error naming the
// byte offset, never a hang or a wrong answer. Damage is located with debugfs, not with our own reader.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, copyFileSync, openSync, writeSync, closeSync, truncateSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO } from '../../lib/image/io.ts';
import { Ext4Fs } from '../../lib/image/ext4/index.ts';
import { CorruptImageError } from '../../lib/errors.ts';
import { makeTree, mkfs, run } from '../helpers/ext4-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-ext4c-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const tree = join(dir, 'tree');
makeTree(tree, { bigFileBytes: 200_000 });
const base = join(dir, 'base.img');
mkfs(base, tree, 16, ['-t', 'ext4', '-b', '4096']);
const bs = 4096;

function damaged(name: string, patches: Array<[number, Buffer]>, truncateTo?: number): string {
  const p = join(dir, name);
  copyFileSync(base, p);
  const fd = openSync(p, 'r+');
  for (const [off, data] of patches) writeSync(fd, data, 0, data.length, off);
  closeSync(fd);
  if (truncateTo !== undefined) truncateSync(p, truncateTo);
  return p;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

function expectCorrupt(fn: () => unknown, offset: number | undefined, re: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.instance(caught, CorruptImageError, `expected CorruptImageError, got ${String(caught)}`);
  const err = caught as CorruptImageError;
  assert.match(err.message, re);
  if (offset !== undefined) assert.is(err.offset, offset, err.message);
}

/** First data block of a directory or file, per debugfs. */
function firstBlock(path: string): number {
  const out = run('debugfs', ['-R', `blocks ${path}`, base]);
  return Number(out.trim().split(/\s+/)[0]);
}

/** Byte offset of an inode in the image, per debugfs imap. */
function inodeOffset(path: string): number {
  const out = run('debugfs', ['-R', `imap ${path}`, base]);
  const m = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(out)!;
  return Number(m[1]) * bs + Number(m[2]);
}

test('the undamaged base reads fine', () => {
  const io = FileIO.open(base);
  const fs = Ext4Fs.open(io);
  assert.ok([...fs.walk()].length > 190);
  io.close();
});

test('bad superblock magic', () => {
  const p = damaged('magic.img', [[1024 + 0x38, Buffer.from([0x12, 0x34])]]);
  const io = FileIO.open(p);
  expectCorrupt(() => Ext4Fs.open(io), 1024 + 0x38, /not an ext2\/3\/4 filesystem.*0x3412/);
  io.close();
});

test('truncated image', () => {
  const p = damaged('trunc.img', [], statSync(base).size / 2);
  const io = FileIO.open(p);
  expectCorrupt(() => Ext4Fs.open(io), 1024 + 4, /truncated/);
  io.close();
});

test('directory entry pointing beyond the inode count', () => {
  // /deep's block: '.' (12 bytes), '..' (12 bytes), then a real entry at byte 24.
  const blk = firstBlock('/deep');
  const p = damaged('dirino.img', [[blk * bs + 24, u32(0x7ffffff0)]]);
  const io = FileIO.open(p);
  const fs = Ext4Fs.open(io);
  expectCorrupt(() => fs.readdir('/deep'), blk * bs + 24, /inode 2147483632, beyond the inode count/);
  expectCorrupt(() => [...fs.walk()], blk * bs + 24, /beyond the inode count/);
  expectCorrupt(() => fs.stat(0x7ffffff0), undefined, /out of range/);
  io.close();
});

test('directory entry whose rec_len overruns the block', () => {
  const blk = firstBlock('/deep');
  const rl = Buffer.alloc(2);
  rl.writeUInt16LE(0xfff0);
  const p = damaged('reclen.img', [[blk * bs + 24 + 4, rl]]);
  const io = FileIO.open(p);
  const fs = Ext4Fs.open(io);
  expectCorrupt(() => fs.lookup('/deep/a/b'), blk * bs + 24, /damaged entry \(rec_len 65520/);
  io.close();
});

test('extent pointing beyond the filesystem', () => {
  // Extent root in i_block (inode + 0x28): header 12 bytes, first extent's ee_start_lo at +8.
  const at = inodeOffset('/big.bin') + 0x28 + 12 + 8;
  const p = damaged('extent.img', [[at, u32(0xfffffff0)]]);
  const io = FileIO.open(p);
  const fs = Ext4Fs.open(io);
  expectCorrupt(() => fs.readFile('/big.bin'), at - 8, /maps blocks 4294967280\.\..*beyond the filesystem/);
  assert.is(fs.readFile('/hello.txt').toString(), 'hello, ext4\n', 'other files still read');
  io.close();
});

test('damaged extent header', () => {
  const at = inodeOffset('/big.bin') + 0x28;
  const p = damaged('exthdr.img', [[at, Buffer.from([0, 0])]]);
  const io = FileIO.open(p);
  const fs = Ext4Fs.open(io);
  expectCorrupt(() => [...fs.readChunks('/big.bin')], at, /damaged extent node \(bad magic\)/);
  io.close();
});

test.run();
