// Warm builds on file systems with reflinks: on XFS and btrfs (each made in a file and loop-mounted here — the
// test does that, the product never mounts) the SSD images are clones of the cached base image, sharing its
// blocks (filefrag -v says "shared"), and hold exactly the bytes a build on ext4 writes (cmp), with manifest
// checksums and bmaps that hold. Skipped, with the reason, where loop devices or mkfs are not available.
// Without reflinks (the work dir's file system), a warm build has the kernel copy each image's blocks
// (copy_file_range, through image/kernel-copy.ts's perl helper): the same bytes again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUbuntuLookalike, tempDir } from '../helpers/lookalike.ts';
import { build, type BuildResult } from '../../lib/assemble/build.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const NODES = ['node1', 'node2', 'node3', 'node4'];
const PATH = `${process.env.PATH}:/usr/sbin:/sbin`;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', env: { ...process.env, PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

let work: string;
let xz: string;
let ext4: BuildResult;
const opts = (cacheDir: string, outDir: string) => ({
  nodes: 'all' as const, image: xz, cacheDir, outDir, secretsDir: join(work, 'secrets'), sourceDateEpoch: 1577836800, profile: join(ROOT, 'profiles', 'yarpi4.yaml'),
});

test.before(async () => {
  work = tempDir('pi-image-reflink-');
  const look = await makeUbuntuLookalike(work, { variant: 'late2019', legacyCmdline: true });
  execFileSync('xz', ['-T1', '-0', '-k', look.img]);
  xz = `${look.img}.xz`;
  // The reference: a build that writes every block through this process (the kernel copy turned off).
  process.env.PI_IMAGE_NO_KERNEL_COPY = '1';
  try {
    ext4 = await build(opts(join(work, 'cache'), join(work, 'out')));
  } finally {
    delete process.env.PI_IMAGE_NO_KERNEL_COPY;
  }
});

test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Make `fsType` in a file and mount it; the mount point, or why not. */
function mountFs(fsType: string): string | { skip: string } {
  if (process.platform !== 'linux') return { skip: 'loop mounts need Linux' };
  if (process.getuid?.() !== 0) return { skip: 'loop mounts need root' };
  const file = join(work, `${fsType}.fs`);
  const mnt = join(work, `${fsType}-mnt`);
  mkdirSync(mnt);
  sh('truncate', ['-s', fsType === 'btrfs' ? '1G' : '1G', file]);
  const mk = spawnSync(`mkfs.${fsType}`, ['-q', ...(fsType === 'xfs' ? ['-m', 'reflink=1'] : []), file], { env: { ...process.env, PATH }, encoding: 'utf8' });
  if (mk.status !== 0) return { skip: `mkfs.${fsType}: ${(mk.stderr || String(mk.error)).trim()}` };
  const m = spawnSync('mount', ['-o', 'loop', file, mnt], { env: { ...process.env, PATH }, encoding: 'utf8' });
  if (m.status !== 0) return { skip: `loop mount refused: ${m.stderr.trim()}` };
  return mnt;
}

function sharedBlocks(path: string): { shared: number; all: number } {
  let shared = 0;
  let all = 0;
  for (const l of sh('filefrag', ['-v', path]).split('\n')) {
    const m = /^\s*\d+:\s*\d+\.\.\s*\d+:\s*\d+\.\.\s*\d+:\s*(\d+):.*$/.exec(l);
    if (!m) continue;
    all += Number(m[1]);
    if (/shared/.test(l)) shared += Number(m[1]);
  }
  return { shared, all };
}

for (const fsType of ['xfs', 'btrfs']) {
  test(`warm build on ${fsType}: SSD images are clones of the base with exactly the ext4 build's bytes`, async () => {
    const mnt = mountFs(fsType);
    if (typeof mnt !== 'string') {
      console.log(`  skipped on ${fsType}: ${mnt.skip}`);
      return;
    }
    try {
      const cache = join(mnt, 'cache');
      await build(opts(cache, join(mnt, 'out-cold'))); // cold: the base is decompressed there (copied, not cloned)
      const warm = await build(opts(cache, join(mnt, 'out')));
      assert.equal(warm.manifest.nodes, ext4.manifest.nodes, 'same manifest as the ext4 build');
      const base = join(cache, 'images', readdirSync(join(cache, 'images')).find((f) => f.endsWith('.img'))!);
      for (const n of NODES) {
        const img = join(mnt, 'out', n, 'ssd.img');
        sh('cmp', [img, join(ext4.outDir, n, 'ssd.img')]);
        assert.is(sha(img), warm.manifest.nodes[n].ssd.sha256, `${n}: manifest sha256`);
        const { shared, all } = sharedBlocks(img);
        assert.ok(all > 0 && shared >= all * 0.9, `${n}: ${shared} of ${all} blocks shared with the base`);
        const copy = join(work, `${fsType}-${n}.copy`);
        sh('bmaptool', ['-q', 'copy', '--bmap', `${img}.bmap`, img, copy]);
        sh('cmp', [img, copy]);
        rmSync(copy);
      }
      assert.ok(sharedBlocks(base).shared > 0, 'the base shares them too');
      assert.equal(readdirSync(join(mnt, 'out', 'node1')).filter((f) => f.includes('.clone-')), [], 'no template left');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
}

test('warm build without reflinks: the kernel copies each SSD image\'s blocks, with exactly the copy path\'s bytes', async () => {
  if (process.platform !== 'linux') {
    console.log('  skipped: the kernel copy is Linux only');
    return;
  }
  // A `perl` first on PATH that notes the files it is given and runs the real one: proof the lanes took this path.
  const shim = join(work, 'shim');
  const log = join(work, 'perl.log');
  mkdirSync(shim, { recursive: true });
  const real = sh('sh', ['-c', 'command -v perl']).trim();
  writeFileSync(join(shim, 'perl'), `#!/bin/sh\ncase "$2" in *copy_file_range*) shift 2; echo "$@" >> '${log}';; esac\nexec '${real}' "$@"\n`, { mode: 0o755 });
  const saved = process.env.PATH;
  process.env.PATH = `${shim}:${saved}`;
  let warm: BuildResult;
  try {
    warm = await build(opts(join(work, 'cache'), join(work, 'out-kernel-copy'))); // the reference's cache: the base is complete
  } finally {
    process.env.PATH = saved;
  }
  const runs = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
  const ssdTargets = runs.flatMap((l) => l.split(' ').filter((a) => a.endsWith('ssd.img')));
  assert.is(ssdTargets.length, NODES.length, `every SSD image copied by the kernel: ${runs.join(' | ')}`);
  assert.equal(warm.manifest.nodes, ext4.manifest.nodes, 'same manifest as the copy path');
  for (const n of NODES) {
    const img = join(work, 'out-kernel-copy', n, 'ssd.img');
    sh('cmp', [img, join(ext4.outDir, n, 'ssd.img')]);
    assert.is(sha(img), warm.manifest.nodes[n].ssd.sha256, `${n}: manifest sha256`);
  }
  // Holes stay holes: no more blocks allocated than the copy path's image.
  const blocks = (p: string) => Number(sh('stat', ['-c', '%b', p]).trim());
  assert.ok(blocks(join(work, 'out-kernel-copy', 'node1', 'ssd.img')) <= blocks(join(ext4.outDir, 'node1', 'ssd.img')), 'no more blocks than the copy path');
});

test.run();
