// Netboot carries the node's bundle: `pi-image netboot` with a pi-image.lock beside the profile puts the role's
// share (the very tar build writes on SSD partition 2) into each NFS root at /var/lib/pi-image/bundle.tar, read back
// here with tar; cloud-init/bundle.sh then takes the file form (no SSD partition 2), extracts and checks it.
// Real parts: the lock world (docker-registry with skopeo-pushed images, a file server on 127.0.0.1), tar, bash.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeUbuntuLookalike, tempDir } from '../helpers/lookalike.ts';
import { startLockWorld, lockProfile, type LockWorld } from '../helpers/lock-fixtures.ts';
import { makeLock, readLock } from '../../lib/lock/lock.ts';
import { PACKAGE_ROOT } from '../../lib/cluster/profile.ts';

let work: string;
let world: LockWorld;
let profile: string;
let cache: string;
let image: string;
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const loader = new URL('../../node_modules/tsx/dist/esm/index.mjs', import.meta.url).href;
const cli = new URL('../../bin/pi-image.ts', import.meta.url).pathname;
/** The CLI as a child process, asynchronously: the world's servers answer from this process meanwhile. */
function piImage(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const c = spawn(process.execPath, ['--import', loader, cli, ...args], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  c.stdout.on('data', (d) => (stdout += d));
  c.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => c.on('close', (status) => resolve({ status, stdout, stderr })));
}
const netbootArgs = (nfs: string, ...more: string[]) => ['netboot', '--all', '--profile', profile, '--secrets', join(work, 'secrets'), '--cache', cache,
  '--image', image, '--server', '10.0.0.1', '--tftp-root', join(work, `${nfs}-tftp`), '--nfs-root', join(work, nfs), '--by', 'mac', ...more];

test.before(async () => {
  work = tempDir('pi-image-nb-bundle-');
  const look = await makeUbuntuLookalike(join(work, 'base'), { extraRootFiles: { 'var/lib/dpkg/arch': 'arm64\n' } });
  image = look.img;
  cache = join(work, 'cache');
  world = await startLockWorld(join(work, 'world'));
  mkdirSync(join(work, 'p'));
  profile = join(work, 'p', 'pi-image.yaml');
  writeFileSync(profile, lockProfile(world, image, (t) => t
    .replace('address: 10.0.0.11/24 }', 'address: 10.0.0.11/24, mac: "dc:a6:32:00:00:01" }')
    .replace('address: 10.0.0.12/24 }', 'address: 10.0.0.12/24, mac: "dc:a6:32:00:00:02" }')));
  await makeLock({ profile, cacheDir: cache, retries: 0, backoffMs: 10 });
});
let closed = false;
const closeWorld = async () => {
  if (world && !closed) await world.close();
  closed = true;
};
test.after(async () => {
  await closeWorld();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The bundle's index rows (kind, sha256, size, member, source) read from a tar with tar. */
function indexOf(bundleTar: string): string[][] {
  const text = execFileSync('tar', ['-xOf', bundleTar, 'pi-image-bundle/index.tsv'], { encoding: 'utf8' });
  return text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split('\t'));
}

test('netboot --format tar with a lock: each NFS root holds its role\'s bundle, every item matching the lock (read back with tar)', async () => {
  const r = await piImage(...netbootArgs('nfs-tar', '--format', 'tar', '--json'));
  assert.is(r.status, 0, r.stdout + r.stderr);
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { nodes: Array<{ name: string; bundle?: { path: string; size: number; items: number } }> };
  const { lock } = readLock(profile)!;
  for (const [node, role] of [['node1', 'master'], ['node2', 'worker']] as const) {
    const nfsTar = join(work, 'nfs-tar', `${node}.tar`);
    const listing = execFileSync('tar', ['-tvf', nfsTar], { encoding: 'utf8' });
    const line = listing.split('\n').find((l) => l.endsWith(' ./var/lib/pi-image/bundle.tar'));
    assert.ok(line, `${node}: no ./var/lib/pi-image/bundle.tar in its NFS root`);
    const dir = join(work, `read-${node}`);
    mkdirSync(dir);
    execFileSync('tar', ['-xf', nfsTar, '-C', dir, './var/lib/pi-image/bundle.tar']);
    const bundleTar = join(dir, 'var/lib/pi-image/bundle.tar');
    assert.is(readFileSync(bundleTar).length, res.nodes.find((n) => n.name === node)!.bundle!.size, `${node}: size as reported`);
    const rows = indexOf(bundleTar);
    execFileSync('tar', ['-xf', bundleTar, '-C', dir]);
    // Every member's bytes match its index sum, and its file sums are the lock's for this role.
    for (const [, sum, size, member] of rows) {
      assert.is(sha(join(dir, member!)), sum, `${node}: ${member}`);
      assert.is(readFileSync(join(dir, member!)).length, Number(size));
    }
    const wantFiles = lock.files.filter((f) => lock.roles[role].files.includes(f.id)).map((f) => f.sha256).sort();
    assert.equal(rows.filter((x) => x[0] === 'file').map((x) => x[1]).sort(), wantFiles, `${node}: the lock's files for ${role}`);
    assert.is(rows.filter((x) => x[0] === 'image').length, lock.roles[role].images.length, `${node}: one archive per locked image of ${role}`);
    assert.ok(wantFiles.length > 0 && lock.roles[role].images.length > 0);
  }
  // A worker carries no control-plane images.
  const worker = indexOf(join(work, 'read-node2', 'var/lib/pi-image/bundle.tar'));
  assert.not.ok(worker.some((x) => /kube-apiserver/.test(x[4]!)), 'worker without kube-apiserver');
  assert.ok(indexOf(join(work, 'read-node1', 'var/lib/pi-image/bundle.tar')).some((x) => /kube-apiserver/.test(x[4]!)));
  // Nothing left under a temporary name.
  assert.equal(readdirSync(join(work, 'nfs-tar')).filter((n) => n.startsWith('.')), []);
});

test('netboot --format dir --offline: the same bundle tar as a file of the NFS root, from the cache alone', async () => {
  await closeWorld(); // nothing answers on the network from here on
  const r = await piImage(...netbootArgs('nfs-dir', '--format', 'dir', '--offline'));
  assert.is(r.status, 0, r.stdout + r.stderr);
  for (const node of ['node1', 'node2']) {
    const f = join(work, 'nfs-dir', node, 'var/lib/pi-image/bundle.tar');
    assert.ok(existsSync(f), f);
    assert.is(sha(f), sha(join(work, `read-${node}`, 'var/lib/pi-image/bundle.tar')), `${node}: dir and tar forms carry the same bytes`);
  }
  assert.equal(readdirSync(join(work, 'nfs-dir')).filter((n) => n.startsWith('.')), []);
});

/** Offset of a member's data in a ustar archive (walks the 512-byte headers). */
function memberOffset(tarFile: string, name: string): number {
  const b = readFileSync(tarFile);
  for (let off = 0; off + 512 <= b.length;) {
    const h = b.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    const base = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const prefix = h.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/s, ''), 8);
    if ((prefix ? `${prefix}/${base}` : base) === name) return off + 512;
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${name} not in ${tarFile}`);
}

test('first boot, file form (no SSD partition 2): bundle.sh extracts the NFS root\'s bundle.tar, checks every sha256, removes the tar', () => {
  const src = join(work, 'read-node1', 'var/lib/pi-image/bundle.tar');
  const fb = join(work, 'fb');
  mkdirSync(fb);
  const env = join(fb, 'fb.env');
  writeFileSync(env, "RUNTIME='docker.io'\n");
  const run = (tarFile: string, bundleDir: string, ...args: string[]) => spawnSync('bash', [join(PACKAGE_ROOT, 'cloud-init', 'bundle.sh'), ...args], {
    env: { ...process.env, PI_IMAGE_ENV: env, PI_IMAGE_BUNDLE: bundleDir, PI_IMAGE_BUNDLE_TAR: tarFile, PI_IMAGE_PLACE: join(fb, 'no-place.tsv') },
    encoding: 'utf8',
  });
  const tarFile = join(fb, 'bundle.tar');
  copyFileSync(src, tarFile);
  const bundleDir = join(fb, 'bundle');
  const u = run(tarFile, bundleDir, 'unpack');
  assert.is(u.status, 0, u.stdout + u.stderr);
  assert.match(u.stdout, /extracting the bundle from .*bundle\.tar/);
  const rows = indexOf(src);
  assert.match(u.stdout, new RegExp(`${rows.length} items checked \\(sha256\\)`));
  assert.not.ok(existsSync(tarFile), 'the tar is removed once extracted and checked');
  for (const [, sum, , member] of rows) assert.is(sha(join(bundleDir, member!)), sum, member);
  // Files then come from it by URL, sha256 re-checked.
  const out = join(fb, 'kubeadm');
  const f = run(tarFile, bundleDir, 'fetch', `${world.base}/k8s/v1.17.17/kubeadm`, out);
  assert.is(f.status, 0, f.stdout + f.stderr);
  assert.is(sha(out), world.sums['/k8s/v1.17.17/kubeadm']);

  // A bundle.tar damaged on the server stops first boot naming the item.
  const damaged = join(fb, 'damaged.tar');
  copyFileSync(src, damaged);
  const kubeadm = rows.find((x) => x[4] === `${world.base}/k8s/v1.17.17/kubeadm`)![3]!;
  const bytes = readFileSync(damaged);
  bytes[memberOffset(damaged, kubeadm) + 100] ^= 0xff;
  writeFileSync(damaged, bytes);
  const d = run(damaged, join(fb, 'bundle2'), 'unpack');
  assert.is(d.status, 1, d.stdout + d.stderr);
  assert.match(d.stdout, new RegExp(`FAILED: bundle item damaged: ${kubeadm.replace(/[./]/g, '\\$&')} \\(.*kubeadm\\): sha256 mismatch`));
  assert.ok(existsSync(damaged), 'a damaged tar is kept for a look');
});

test.run();
