// Test fixtures for the ext4 reader, made at test time by the real tools: a generated tree with every kind of
// file (nested dirs, an htree-sized directory, long and non-ASCII names, empty, multi-MB and sparse files, fast
// and slow symlinks, hard links, devices, odd modes and owners) put into an image with `mkfs.ext4 -d`; plus
// parsers for debugfs and dumpe2fs output to compare against.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, symlinkSync, linkSync, chmodSync, chownSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

export const PATH_ENV = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };

export function run(cmd: string, args: string[], opts: { input?: string } = {}): string {
  return execFileSync(cmd, args, { env: PATH_ENV, encoding: 'utf8', maxBuffer: 256 << 20, input: opts.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Deterministic pseudo-random bytes (so failures reproduce). */
export function prng(n: number, seed: number): Buffer {
  const out = Buffer.alloc((n + 3) & ~3);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out.subarray(0, n);
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export interface TreeOptions {
  /** Add a sparse file whose data sits past 64 MiB: with 1 KiB blocks and no extents this needs a triple
   *  indirect block. */
  tripleIndirect?: boolean;
  bigFileBytes?: number;
  /** Names only in ASCII (the netboot cpio path wants that). */
  asciiOnly?: boolean;
}

/** Write the reference tree under `dir` (must not exist). Run as root: it chowns and makes device nodes. */
export function makeTree(dir: string, opts: TreeOptions = {}): void {
  mkdirSync(dir);
  const f = (p: string, data: string | Buffer, mode = 0o644): void => {
    writeFileSync(join(dir, p), data);
    chmodSync(join(dir, p), mode);
  };
  f('hello.txt', 'hello, ext4\n');
  f('empty', '');
  f('big.bin', prng(opts.bigFileBytes ?? 3 * 1024 * 1024 + 123, 7));
  // Sparse: data at 0, a hole, data at 7 MiB, a hole to the end.
  const fd = openSync(join(dir, 'sparse.bin'), 'w');
  writeSync(fd, prng(5000, 1), 0, 5000, 0);
  writeSync(fd, prng(70000, 2), 0, 70000, 7 * 1024 * 1024);
  ftruncateSync(fd, 12 * 1024 * 1024 + 17);
  closeSync(fd);
  if (opts.tripleIndirect) {
    const t = openSync(join(dir, 'far.bin'), 'w');
    writeSync(t, prng(9000, 3), 0, 9000, 70 * 1024 * 1024);
    closeSync(t);
  }
  mkdirSync(join(dir, 'deep/a/b/c/d/e/f'), { recursive: true });
  f('deep/a/b/c/d/e/f/leaf.txt', 'leaf\n');
  mkdirSync(join(dir, 'many'));
  for (let i = 0; i < 180; i++) f(`many/entry-${String(i).padStart(3, '0')}-${'x'.repeat(i % 40)}.txt`, `entry ${i}\n`);
  const long = 'L'.repeat(251) + '.txt';
  f(`many/${long}`, 'a name of 255 bytes\n');
  if (!opts.asciiOnly) f('café-ünïcode.txt', 'non-ASCII name\n');
  symlinkSync('hello.txt', join(dir, 'link-fast'));
  symlinkSync(`many/${long}`, join(dir, 'link-slow'));
  symlinkSync('/deep/a/b', join(dir, 'link-abs-dir'));
  symlinkSync('does/not/exist', join(dir, 'link-dangling'));
  linkSync(join(dir, 'hello.txt'), join(dir, 'hard-1'));
  linkSync(join(dir, 'hello.txt'), join(dir, 'deep/hard-2'));
  f('secret', 'top secret\n', 0o600);
  chownSync(join(dir, 'secret'), 1000, 1001);
  f('suid-tool', '#!/bin/sh\n', 0o4755);
  f('nobody.txt', 'nobody\n', 0o640);
  chownSync(join(dir, 'nobody.txt'), 65534, 65534);
  mkdirSync(join(dir, 'tmp'));
  chmodSync(join(dir, 'tmp'), 0o1777);
  mkdirSync(join(dir, 'dev'));
  run('mknod', [join(dir, 'dev/null'), 'c', '1', '3']);
  run('mknod', [join(dir, 'dev/sda'), 'b', '8', '0']);
  run('mknod', [join(dir, 'dev/bignum'), 'c', '300', '70000']);
  run('mkfifo', [join(dir, 'dev/fifo')]);
  chownSync(join(dir, 'dev'), 0, 5);
}

/** `mkfs.ext4 -d tree` into a fresh image file of `sizeMiB`. `extra` are mke2fs flags (-b, -O, -I, -t). */
export function mkfs(img: string, tree: string, sizeMiB: number, extra: string[]): void {
  run('mke2fs', ['-q', '-F', '-L', 'testfs', '-E', 'root_owner=0:0', ...extra, '-d', tree, img, `${sizeMiB}M`]);
}

/** mkfs -d never builds hashed directories; `e2fsck -fyD` re-packs every directory and indexes the big ones. */
export function indexDirectories(img: string): void {
  try {
    execFileSync('e2fsck', ['-fyD', img], { env: PATH_ENV, stdio: 'pipe' });
  } catch (err) {
    // Exit 1 = "errors corrected": the optimisation counts as a change.
    if ((err as { status?: number }).status !== 1) throw err;
  }
}

export interface DebugfsStat {
  ino: number;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  mtime: number;
  rdev?: { major: number; minor: number };
}

/** `stat` every path in one debugfs run and parse the answers. */
export function debugfsStats(img: string, paths: string[]): Map<string, DebugfsStat> {
  const cmds = paths.map((p) => `stat "${p}"`).join('\n') + '\n';
  const out = run('debugfs', ['-f', '-', img], { input: cmds });
  const res = new Map<string, DebugfsStat>();
  const parts = out.split(/^debugfs: stat /m).slice(1);
  if (parts.length !== paths.length) throw new Error(`debugfs answered ${parts.length} of ${paths.length} stats`);
  parts.forEach((text, i) => {
    const m = (re: RegExp): string => {
      const r = re.exec(text);
      if (!r) throw new Error(`debugfs stat ${paths[i]}: no ${re} in\n${text}`);
      return r[1];
    };
    const st: DebugfsStat = {
      ino: Number(m(/Inode: (\d+)/)),
      type: m(/Type: (\w+)/),
      mode: parseInt(m(/Mode:\s+(\d+)/), 8),
      uid: Number(m(/User:\s+(\d+)/)),
      gid: Number(m(/Group:\s+(\d+)/)),
      size: Number(m(/Size: (\d+)/)),
      links: Number(m(/Links: (\d+)/)),
      mtime: parseInt(m(/^\s*mtime: 0x([0-9a-f]+)/m), 16),
    };
    const dev = /Device major\/minor number: (\d+):(\d+)/.exec(text);
    if (dev) st.rdev = { major: Number(dev[1]), minor: Number(dev[2]) };
    res.set(paths[i], st);
  });
  return res;
}

/** Used block runs [first, count] as dumpe2fs reports them: the complement of its free-block lists. */
export function dumpe2fsUsedBlocks(img: string): { blockSize: number; firstDataBlock: number; blocksCount: number; used: Array<[number, number]> } {
  const out = run('dumpe2fs', [img]);
  const blockSize = Number(/^Block size:\s+(\d+)/m.exec(out)![1]);
  const blocksCount = Number(/^Block count:\s+(\d+)/m.exec(out)![1]);
  const firstDataBlock = Number(/^First block:\s+(\d+)/m.exec(out)![1]);
  const free: Array<[number, number]> = [];
  for (const line of out.matchAll(/^\s+Free blocks: (.*)$/gm)) {
    for (const part of line[1].split(',').map((s) => s.trim()).filter(Boolean)) {
      const [a, b] = part.split('-').map(Number);
      free.push([a, (b ?? a) - a + 1]);
    }
  }
  free.sort((x, y) => x[0] - y[0]);
  const used: Array<[number, number]> = [];
  let cur = firstDataBlock;
  for (const [s, n] of free) {
    if (s > cur) used.push([cur, s - cur]);
    cur = Math.max(cur, s + n);
  }
  if (cur < blocksCount) used.push([cur, blocksCount - cur]);
  return { blockSize, firstDataBlock, blocksCount, used };
}
