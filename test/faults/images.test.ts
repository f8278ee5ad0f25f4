// Fault cases of hostile disk images, given as a user would to inspect, ls, cat, build --image and netboot --image:
// MBR (overlapping partitions, a partition past the end, a bad signature, a GPT with an absurd entry count), FAT
// (directory loops to the parent and to the root, a chain loop, a cluster out of range, a zero cluster size) and
// ext4 (absurd counts, a bitmap past the end, a directory loop, symlinks that point to themselves). Fixtures are a
// lookalike Ubuntu image damaged with the real tools (sfdisk, mmd, debugfs) and byte patches at offsets found by
// reading the bytes. Every case: exit 1, the error names the image and the fault, nothing left under out/, the
// TFTP or NFS roots.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { cli, assertClean, leftovers, workspace, copyImage, patch, PATH_ENV, type Workspace } from './helpers.ts';

let w: Workspace;
const env = { ...process.env, PATH: PATH_ENV, MTOOLS_SKIP_CHECK: '1' };
const sh = (cmd: string, args: string[], input?: string): string => execFileSync(cmd, args, { env, input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });

function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

// ---- FAT32 by its bytes (offsets from the boot sector, not from our reader) ----------------------------------

interface Fat32 {
  part: number; // byte offset of the volume
  fats: number[]; // byte offset of each FAT copy
  data: number; // byte offset of cluster 2
  clusterSize: number;
  rootCluster: number;
}

function fat32(img: string, part: number): Fat32 {
  const b = readAt(img, part, 512);
  const bps = b.readUInt16LE(11);
  const spc = b[13];
  const reserved = b.readUInt16LE(14);
  const nfats = b[16];
  const fatSectors = b.readUInt32LE(36);
  const fats = Array.from({ length: nfats }, (_, i) => part + (reserved + i * fatSectors) * bps);
  return { part, fats, data: part + (reserved + nfats * fatSectors) * bps, clusterSize: spc * bps, rootCluster: b.readUInt32LE(44) };
}

const clusterOffset = (f: Fat32, c: number): number => f.data + (c - 2) * f.clusterSize;

/** Byte offset of the 32-byte short entry named `name11` (8.3, space padded) in the directory starting at cluster
 *  `c`, following its chain in the first FAT. */
function findEntry(img: string, f: Fat32, c: number, name11: string): number {
  for (let k = c, hops = 0; k >= 2 && k < 0x0ffffff8 && hops < 4096; k = readAt(img, f.fats[0] + k * 4, 4).readUInt32LE(0) & 0x0fffffff, hops++) {
    const buf = readAt(img, clusterOffset(f, k), f.clusterSize);
    for (let i = 0; i < buf.length; i += 32) if (buf.toString('latin1', i, i + 11) === name11) return clusterOffset(f, k) + i;
  }
  throw new Error(`no entry ${name11} in the directory at cluster ${c}`);
}

const entryCluster = (img: string, at: number): number => {
  const e = readAt(img, at, 32);
  return (e.readUInt16LE(20) << 16) | e.readUInt16LE(26);
};

function setEntryCluster(img: string, at: number, c: number): void {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(c >>> 16);
  patch(img, at + 20, b);
  b.writeUInt16LE(c & 0xffff);
  patch(img, at + 26, b);
}

function setFat(img: string, f: Fat32, n: number, v: number): void {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  for (const off of f.fats) patch(img, off + n * 4, b);
}

// ---- ext4 through debugfs on the partition cut out and put back --------------------------------------------

function withExt4(img: string, fn: (part: string) => void): void {
  const off = w.look.root.offset;
  const part = `${img}.p2`;
  sh('dd', [`if=${img}`, `of=${part}`, 'bs=1M', `skip=${off >> 20}`, `count=${w.look.root.size >> 20}`, 'status=none']);
  fn(part);
  sh('dd', [`if=${part}`, `of=${img}`, 'bs=1M', `seek=${off >> 20}`, 'conv=notrunc', 'status=none']);
  rmSync(part);
}
const debugfs = (part: string, ...cmds: string[]): void => void sh('debugfs', ['-w', '-f', '-', part], cmds.join('\n') + '\n');

// ---- the fixtures --------------------------------------------------------------------------------------------

type Cmd = 'inspect' | 'ls' | 'cat' | 'build' | 'netboot';
interface Fixture {
  name: string;
  make: (img: string) => void;
  /** The commands that must fail, with the ls/cat path they use, and what the error must say. */
  cmds: Partial<Record<Cmd, string | true>>;
  fault: RegExp;
}

const MBR_P2 = 446 + 16;
const le32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
};
const all = { inspect: true, ls: '1:/', cat: '1:/config.txt', build: true, netboot: true } as const;

const fixtures: Fixture[] = [
  { name: 'overlapping partitions (p2 starts inside p1)', cmds: all, fault: /overlap/i,
    make: (img) => patch(img, MBR_P2 + 8, le32(w.look.boot.startLba + 16)) },
  { name: 'a partition past the end of the image', cmds: all, fault: /beyond|past|end|outside|larger/i,
    make: (img) => patch(img, MBR_P2 + 12, le32(0x7fffffff)) },
  { name: 'no MBR signature', cmds: all, fault: /signature|MBR|partition table/i,
    make: (img) => patch(img, 510, [0, 0]) },
  { name: 'a GPT with an absurd entry count', cmds: all, fault: /GPT/,
    make: (img) => {
      sh('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img], `label: gpt\nstart=2048, size=${w.look.boot.sectors}, type=ebd0a0a2-b9e5-4433-87c0-68b6b72699c7\n`);
      patch(img, 512 + 80, le32(0xffffffff)); // number of partition entries
    } },
  { name: 'FAT directory entry that loops back to its parent', cmds: { inspect: true, build: true, netboot: true }, fault: /directory loop at \/overlays\/LOOP|directory loop at \/overlays\/loop/i,
    make: (img) => {
      sh('mmd', ['-i', `${img}@@${w.look.boot.offset}`, '::/overlays/loop']);
      const f = fat32(img, w.look.boot.offset);
      const overlays = entryCluster(img, findEntry(img, f, f.rootCluster, 'OVERLAYS   '));
      setEntryCluster(img, findEntry(img, f, overlays, 'LOOP       '), overlays);
    } },
  { name: 'FAT directory entry that points at the root', cmds: { inspect: true, build: true, netboot: true }, fault: /directory loop at \/overlays\/up/i,
    make: (img) => {
      sh('mmd', ['-i', `${img}@@${w.look.boot.offset}`, '::/overlays/up']);
      const f = fat32(img, w.look.boot.offset);
      const overlays = entryCluster(img, findEntry(img, f, f.rootCluster, 'OVERLAYS   '));
      setEntryCluster(img, findEntry(img, f, overlays, 'UP         '), f.rootCluster);
    } },
  { name: 'FAT cluster chain loop in config.txt', cmds: { inspect: true, cat: '1:/config.txt', build: true, netboot: true }, fault: /loop|chain/i,
    make: (img) => {
      const f = fat32(img, w.look.boot.offset);
      const c = entryCluster(img, findEntry(img, f, f.rootCluster, 'CONFIG  TXT'));
      setFat(img, f, c, c);
    } },
  { name: 'FAT entry whose cluster is out of range', cmds: { inspect: true, ls: '1:/', cat: '1:/config.txt', build: true, netboot: true }, fault: /cluster .*outside|out of range/i,
    make: (img) => {
      const f = fat32(img, w.look.boot.offset);
      setEntryCluster(img, findEntry(img, f, f.rootCluster, 'CONFIG  TXT'), 0x0ffffff0);
    } },
  { name: 'FAT boot sector with zero sectors per cluster', cmds: all, fault: /cluster|boot sector|FAT/i,
    make: (img) => patch(img, w.look.boot.offset + 13, [0]) },
  { name: 'ext4 with an absurd inode count', cmds: { inspect: true, ls: '2:/etc', cat: '2:/etc/fstab', build: true, netboot: true }, fault: /inode|superblock|count/i,
    make: (img) => withExt4(img, (p) => debugfs(p, 'ssv inodes_count 4294967295')) },
  { name: 'ext4 with an absurd block count', cmds: { inspect: true, ls: '2:/etc', cat: '2:/etc/fstab', build: true, netboot: true }, fault: /block|superblock|count|beyond|end/i,
    make: (img) => withExt4(img, (p) => debugfs(p, 'ssv blocks_count 999999999999')) },
  { name: 'ext4 block bitmap past the end', cmds: { build: true, netboot: true }, fault: /bitmap|beyond|end|outside/i,
    make: (img) => withExt4(img, (p) => debugfs(p, 'set_bg 0 block_bitmap 99999999', 'set_bg 0 checksum calc')) },
  { name: 'ext4 directory hard-linked into itself', cmds: { netboot: true }, fault: /directory loop|appears twice/i,
    make: (img) => withExt4(img, (p) => debugfs(p, 'ln /usr /usr/share/back-to-usr')) },
  { name: 'ext4 /etc/fstab a symlink to itself', cmds: { inspect: true, cat: '2:/etc/fstab', netboot: true }, fault: /symlink loop at \/etc\/fstab/,
    make: (img) => withExt4(img, (p) => debugfs(p, 'rm /etc/fstab', 'symlink /etc/fstab /etc/fstab')) },
  { name: 'ext4 /etc/os-release a relative symlink to itself', cmds: { inspect: true, cat: '2:/etc/os-release' }, fault: /symlink loop at \/etc\/os-release/,
    make: (img) => withExt4(img, (p) => debugfs(p, 'rm /etc/os-release', 'symlink /etc/os-release os-release')) },
];

const made = new Map<string, string>();
function image(f: Fixture): string {
  let p = made.get(f.name);
  if (!p) {
    p = copyImage(w, f.name.replace(/[^a-z0-9]+/gi, '-'));
    f.make(p);
    made.set(f.name, p);
  }
  return p;
}

test.before(async () => {
  w = await workspace('pi-image-faults-images-');
  writeFileSync(w.profile, readFileSync(w.profile, 'utf8').replace('{ name: node1, role: master,', '{ name: node1, serial: 1a2b3c4d, role: master,'));
});
test.after(() => rmSync(w.dir, { recursive: true, force: true }));

test('the undamaged lookalike passes every command (so each fault below is the fault, not the setup)', () => {
  const img = w.look.img;
  for (const args of [['inspect', img], ['ls', `${img}:1:/`], ['cat', `${img}:2:/etc/fstab`]]) {
    const r = cli(w.dir, args);
    assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  const b = cli(w.dir, ['build', 'node1', '--image', img, '--secrets', w.secrets, '--cache', w.cache, '--out', join(w.dir, 'out-good')]);
  assert.is(b.code, 0, b.stderr);
  const n = cli(w.dir, ['netboot', 'node1', '--image', img, '--secrets', w.secrets, '--server', '10.0.0.1', '--tftp-root', join(w.dir, 'tftp-good'), '--nfs-root', join(w.dir, 'nfs-good'), '--format', 'tar']);
  assert.is(n.code, 0, n.stderr);
});

for (const f of fixtures) {
  for (const [cmd, arg] of Object.entries(f.cmds) as Array<[Cmd, string | true]>) {
    test(`${f.name}: ${cmd} fails naming the image and the fault, nothing left`, () => {
      const img = image(f);
      const key = `${f.name}-${cmd}`.replace(/[^a-z0-9]+/gi, '-');
      const out = join(w.dir, 'runs', key);
      let args: string[];
      switch (cmd) {
        case 'inspect':
          args = ['inspect', img];
          break;
        case 'ls':
        case 'cat':
          args = [cmd, `${img}:${arg}`];
          break;
        case 'build':
          args = ['build', 'node1', '--image', img, '--secrets', w.secrets, '--cache', w.cache, '--out', join(out, 'out')];
          break;
        case 'netboot':
          args = ['netboot', 'node1', '--image', img, '--secrets', w.secrets, '--server', '10.0.0.1', '--tftp-root', join(out, 'tftp'), '--nfs-root', join(out, 'nfs'), '--format', 'tar'];
          break;
      }
      const r = cli(w.dir, args);
      assertClean(r, { names: [img, f.fault], clean: [out, w.cache] });
      assert.is(r.stdout, '', 'nothing on stdout');
      if (cmd === 'build') assert.equal(existsSync(join(out, 'out')) ? readdirSync(join(out, 'out')) : [], [], 'no output under out/');
      if (cmd === 'netboot') {
        for (const d of ['tftp', 'nfs']) {
          const left = existsSync(join(out, d)) ? readdirSync(join(out, d)) : [];
          assert.equal(left, [], `nothing left in the ${d} root`);
        }
      }
      assert.equal(leftovers(join(w.dir, 'img')), [], 'no temporary file beside the images');
    });
  }
}

test.run();
