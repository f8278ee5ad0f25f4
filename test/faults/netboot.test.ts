// Fault cases of `netboot` around the file system and mid-way failures, run as a user would: the NFS root's disk
// fills up after the TFTP trees are made, a file of the root fs is damaged (export fails mid-way), the TFTP root is
// read-only, kill -9 mid-way. Each: the error says what and where; no board's TFTP tree and no NFS root is left
// under a final name (they are written under temporary names and renamed at the end); the next run starts clean.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, cliKilled, assertClean, leftovers, mountTmpfs, workspace, copyImage, PATH_ENV, type Workspace } from './helpers.ts';

let w: Workspace;
test.before(async () => {
  w = await workspace('pi-image-faults-netboot-');
  writeFileSync(
    w.profile,
    readFileSync(w.profile, 'utf8')
      .replace('{ name: node1, role: master,', '{ name: node1, serial: 1a2b3c4d, role: master,')
      .replace('{ name: node2, role: worker,', '{ name: node2, serial: 0000beef, role: worker,'),
  );
});
test.after(() => rmSync(w.dir, { recursive: true, force: true }));

const args = (img: string, tftp: string, nfs: string, ...more: string[]) => [
  'netboot', 'node1', 'node2', '--image', img, '--secrets', w.secrets, '--server', '10.0.0.1', '--tftp-root', tftp, '--nfs-root', nfs, '--format', 'tar', ...more,
];
const finals = (d: string) => (existsSync(d) ? readdirSync(d).filter((n) => !n.startsWith('.')) : []);

test('netboot whose NFS root fills up mid-way: ENOSPC named; no TFTP tree of any board left', () => {
  const fs = mountTmpfs(256);
  if (typeof fs === 'string') throw new Error(fs);
  try {
    const tftp = join(w.dir, 'full-tftp');
    const r = cli(w.dir, args(w.look.img, tftp, fs.dir));
    assertClean(r, { names: [/no space left/, fs.dir], clean: [tftp, fs.dir] });
    assert.equal(finals(tftp), [], 'no TFTP tree left (it was made before the NFS root failed)');
    assert.equal(finals(fs.dir), [], 'no NFS root left');
  } finally {
    fs.unmount();
  }
});

test('netboot that meets a damaged file while exporting the root: names it; no TFTP tree left', () => {
  const img = copyImage(w, 'damaged-file');
  // Damage one file's inode with debugfs (its first extent points far past the end), in the partition cut out.
  const part = `${img}.p2`;
  const off = w.look.root.offset;
  const env = { ...process.env, PATH: PATH_ENV };
  execFileSync('dd', [`if=${img}`, `of=${part}`, 'bs=1M', `skip=${off >> 20}`, `count=${w.look.root.size >> 20}`, 'status=none']);
  execFileSync('debugfs', ['-w', '-R', 'sif /usr/bin/tool1 block[5] 9999999', part], { env, stdio: 'ignore' });
  execFileSync('dd', [`if=${part}`, `of=${img}`, 'bs=1M', `seek=${off >> 20}`, 'conv=notrunc', 'status=none']);
  rmSync(part);
  const tftp = join(w.dir, 'dmg-tftp');
  const nfs = join(w.dir, 'dmg-nfs');
  const r = cli(w.dir, args(img, tftp, nfs));
  assertClean(r, { names: [img, /extent|beyond|block|inode/i], clean: [tftp, nfs] });
  assert.equal(finals(tftp), [], 'no TFTP tree left');
  assert.equal(finals(nfs), [], 'no NFS root left');
});

test('netboot into a read-only TFTP root: EROFS named (not ENOENT)', () => {
  const fs = mountTmpfs(1024, { readOnly: true });
  if (typeof fs === 'string') throw new Error(fs);
  try {
    const nfs = join(w.dir, 'ro-nfs');
    const r = cli(w.dir, args(w.look.img, join(fs.dir, 'tftp'), nfs));
    assertClean(r, { names: [/read-only file system/, fs.dir], clean: [nfs] });
    assert.not.match(r.stderr, /ENOENT/);
    assert.equal(finals(nfs), []);
  } finally {
    fs.unmount();
  }
});

test('netboot killed with SIGKILL mid-way: no final name; the next run completes and removes the leftovers', async () => {
  const tftp = join(w.dir, 'kill-tftp');
  const nfs = join(w.dir, 'kill-nfs');
  const k = await cliKilled(w.dir, args(w.look.img, tftp, nfs), { when: /tftp firmware/ });
  assert.ok(k.killed, `killed mid-way: ${k.stderr}`);
  assert.equal(finals(tftp), [], 'no TFTP tree under a final name');
  assert.equal(finals(nfs).filter((n) => /\.tar$/.test(n)), [], 'no NFS root under a final name');
  const r = cli(w.dir, args(w.look.img, tftp, nfs));
  assert.is(r.code, 0, r.stderr);
  assert.equal(finals(tftp).sort(), ['0000beef', '1a2b3c4d']);
  assert.ok(existsSync(join(nfs, 'node1.tar')) && existsSync(join(nfs, 'node2.tar')));
  assert.equal([...leftovers(tftp), ...leftovers(nfs)], [], 'the killed run\'s temporary files are gone');
});

test.run();
