// NFS root export: the tar (listed and extracted by GNU tar) and the directory export hold exactly the files
// `debugfs -R 'rdump / DIR'` extracts from the same ext4, with equal modes, owners, symlink targets and contents
// (sha256); device nodes and hard links survive; overrides replace and add files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, mkdirSync, readFileSync, lstatSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileIO } from '../../lib/image/io.ts';
import { Ext4Fs } from '../../lib/image/ext4/index.ts';
import { exportTar, exportDir } from '../../lib/netboot/export-root.ts';
import { makeTree, mkfs, run, sha256, debugfsStats } from '../helpers/ext4-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'pi-image-export-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const tree = join(dir, 'tree');
makeTree(tree);
writeFileSync(join(tree, 'fstab'), 'LABEL=writable / ext4 defaults 0 0\n');
const img = join(dir, 'root.img');
mkfs(img, tree, 64, ['-t', 'ext4', '-b', '4096']);
const rdump = join(dir, 'rdump');
mkdirSync(rdump);
run('debugfs', ['-R', `rdump / ${rdump}`, img]);

/** Every path under `root`, relative with a leading slash. */
function listTree(root: string): string[] {
  return run('find', [root, '-mindepth', '1']).split('\n').filter(Boolean).map((p) => p.slice(root.length)).sort();
}

/** Compare an extracted tree with debugfs' view of the image, path by path. */
function compareWithDebugfs(extracted: string): void {
  const ours = listTree(extracted);
  const specials = ['/dev/null', '/dev/sda', '/dev/bignum', '/dev/fifo'];
  // debugfs rdump skips device nodes and fifos; everything else must be identical.
  assert.equal(ours.filter((p) => !specials.includes(p)), listTree(rdump), 'same paths as debugfs rdump');
  for (const s of specials) assert.ok(ours.includes(s), `${s} exported`);
  const stats = debugfsStats(img, ours);
  for (const p of ours) {
    const mine = lstatSync(join(extracted, p));
    const d = stats.get(p)!;
    assert.is(mine.mode & 0o7777, d.mode, `${p} mode`);
    assert.is(mine.uid, d.uid, `${p} uid`);
    assert.is(mine.gid, d.gid, `${p} gid`);
    if (!mine.isDirectory()) assert.is(Math.floor(mine.mtimeMs / 1000), d.mtime, `${p} mtime`);
    if (mine.isFile()) {
      assert.is(sha256(readFileSync(join(extracted, p))), sha256(readFileSync(join(rdump, p))), `${p} sha256`);
    } else if (mine.isSymbolicLink()) {
      assert.is(readlinkSync(join(extracted, p)), readlinkSync(join(rdump, p)), `${p} target`);
    } else if (mine.isCharacterDevice() || mine.isBlockDevice()) {
      assert.is(Math.floor(mine.rdev / 256) & 0xfff, d.rdev!.major, `${p} major`);
    }
  }
  assert.is(lstatSync(join(extracted, 'hard-1')).ino, lstatSync(join(extracted, 'deep/hard-2')).ino, 'hard link kept');
  assert.is(lstatSync(join(extracted, 'hard-1')).nlink, 3);
  assert.is(lstatSync(join(extracted, 'tmp')).mode & 0o7777, 0o1777);
  assert.is(lstatSync(join(extracted, 'suid-tool')).mode & 0o7777, 0o4755);
}

test('tar export equals debugfs rdump (GNU tar lists and extracts it)', async () => {
  const io = FileIO.open(img);
  const fs = Ext4Fs.open(io);
  const out = join(dir, 'root.tar');
  const res = await exportTar(fs, out);
  io.close();
  assert.ok(res.files > 190 && res.hardlinks === 2 && res.devices === 4, JSON.stringify(res));
  const listing = run('tar', ['-tvf', out, '--numeric-owner']);
  assert.match(listing, /^crw-r--r-- 0\/0\s+1,3 .* \.\/dev\/null$/m);
  assert.match(listing, /^crw-r--r-- 0\/0\s+300,70000 .* \.\/dev\/bignum$/m);
  assert.match(listing, /^-rw------- 1000\/1001 .* \.\/secret$/m);
  assert.match(listing, /^hrw-r--r-- 0\/0 .* \.\/hard-1 link to \.\/deep\/hard-2$|^hrw-r--r-- 0\/0 .* \.\/deep\/hard-2 link to \.\/hard-1$/m);
  const x = join(dir, 'x-tar');
  mkdirSync(x);
  run('tar', ['-xpf', out, '-C', x, '--numeric-owner']);
  compareWithDebugfs(x);
  rmSync(x, { recursive: true });
});

test('directory export equals debugfs rdump', async () => {
  const io = FileIO.open(img);
  const fs = Ext4Fs.open(io);
  const out = join(dir, 'rootdir');
  const res = await exportDir(fs, out);
  io.close();
  assert.is(res.skippedDevices.length, 0);
  compareWithDebugfs(out);
  rmSync(out, { recursive: true });
});

test('overrides replace files (keeping owner and mode) and add new ones with parents', async () => {
  const io = FileIO.open(img);
  const fs = Ext4Fs.open(io);
  const out = join(dir, 'over.tar');
  await exportTar(fs, out, {
    overrides: {
      '/fstab': { data: '/dev/nfs / nfs defaults 0 0\n' },
      '/secret': { data: 'replaced\n' },
      '/boot/firmware/user-data': { data: '#cloud-config\n', mode: 0o600 },
    },
  });
  io.close();
  const x = join(dir, 'x-over');
  mkdirSync(x);
  run('tar', ['-xpf', out, '-C', x, '--numeric-owner']);
  assert.is(readFileSync(join(x, 'fstab'), 'utf8'), '/dev/nfs / nfs defaults 0 0\n');
  const sec = lstatSync(join(x, 'secret'));
  assert.is(readFileSync(join(x, 'secret'), 'utf8'), 'replaced\n');
  assert.is(sec.uid, 1000);
  assert.is(sec.mode & 0o7777, 0o600);
  const ud = lstatSync(join(x, 'boot/firmware/user-data'));
  assert.is(ud.mode & 0o7777, 0o600);
  assert.is(lstatSync(join(x, 'boot')).mode & 0o7777, 0o755);
  rmSync(x, { recursive: true });
});

test.run();
