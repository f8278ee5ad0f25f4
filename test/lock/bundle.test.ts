// Lock round trip: `lock`, `build` (fetching the layers), then with every server stopped `build --offline` from
// the cache alone; the bundle on SSD partition 2 read back with sfdisk, dd and tar, every item's sha256 checked,
// image archives read by skopeo both as an OCI archive (containerd's import) and a docker archive (docker load),
// the whole image checked by bmaptool against its bmap, the manifest listing it; a stale lock and a missing
// blob refused by name.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { makeUbuntuLookalike, tempDir } from '../helpers/lookalike.ts';
import { startLockWorld, lockProfile, type LockWorld } from '../helpers/lock-fixtures.ts';
import { makeLock } from '../../lib/lock/lock.ts';
import { build, type BuildResult } from '../../lib/assemble/build.ts';
import { BlobStore } from '../../lib/lock/store.ts';
import { PACKAGE_ROOT } from '../../lib/cluster/profile.ts';

let work: string;
let world: LockWorld;
let profile: string;
let cache: string;
let online: BuildResult;
let offline: BuildResult;
const EPOCH = 1577836800;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
async function rejects(fn: () => Promise<unknown>, re: RegExp): Promise<void> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, 'expected a refusal');
  assert.match((err as Error).message, re, (err as Error).message);
}
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test.before(async () => {
  work = tempDir('pi-image-bundle-');
  const look = await makeUbuntuLookalike(join(work, 'base'), { extraRootFiles: { 'var/lib/dpkg/arch': 'arm64\n' } });
  cache = join(work, 'cache');
  world = await startLockWorld(join(work, 'world'));
  mkdirSync(join(work, 'p'));
  profile = join(work, 'p', 'pi-image.yaml');
  writeFileSync(profile, lockProfile(world, look.img));
  await makeLock({ profile, cacheDir: cache, retries: 0, backoffMs: 10 });
  const common = { nodes: 'all' as const, profile, cacheDir: cache, secretsDir: join(work, 'secrets'), sourceDateEpoch: EPOCH, jobs: 1 };
  online = await build({ ...common, outDir: join(work, 'out1') });
  await world.close(); // from here on nothing answers on the network
  offline = await build({ ...common, outDir: join(work, 'out2'), offline: true });
});
test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('build --offline from the cache alone makes the same images as the online build', () => {
  for (const n of ['node1', 'node2']) {
    assert.is(offline.manifest.nodes[n]!.ssd.sha256, online.manifest.nodes[n]!.ssd.sha256, n);
    assert.equal(offline.manifest.nodes[n]!.bundle, online.manifest.nodes[n]!.bundle);
  }
});

function bundleOf(node: string): { dir: string; index: string[][]; part: { start: number; size: number; type: string } } {
  const img = join(offline.outDir, node, 'ssd.img');
  const t = JSON.parse(sh('sfdisk', ['--json', img])).partitiontable;
  assert.is(t.partitions.length, 2, 'root and bundle');
  const [p1, p2] = t.partitions;
  assert.is(p2.type, 'da');
  assert.ok(p2.start >= p1.start + p1.size + 2048, 'the bundle starts after the root, past a 1 MiB gap');
  const dir = join(work, `x-${node}`);
  mkdirSync(dir, { recursive: true });
  const raw = join(work, `${node}-p2.tar`);
  execFileSync('dd', [`if=${img}`, `of=${raw}`, 'bs=512', `skip=${p2.start}`, `count=${p2.size}`, 'status=none']);
  const list = sh('tar', ['-tf', raw]).trim().split('\n');
  assert.is(list[0], 'pi-image-bundle/index.tsv', 'the index comes first');
  execFileSync('tar', ['-xf', raw, '-C', dir]);
  const index = readFileSync(join(dir, 'pi-image-bundle/index.tsv'), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#')).map((l) => l.split('\t'));
  return { dir, index, part: { start: p2.start, size: p2.size, type: p2.type } };
}

test('each node carries its role share as a tar on SSD p2, every item matching its sha256', () => {
  const host = world.registry.host;
  const m = bundleOf('node1');
  const w = bundleOf('node2');
  for (const b of [m, w]) {
    assert.ok(b.index.length > 0);
    for (const [, sum, size, name] of b.index) {
      const p = join(b.dir, name!);
      assert.is(sha(p), sum, name);
      assert.is(readFileSync(p).length, Number(size), name);
    }
  }
  const sources = (b: typeof m) => b.index.map((r) => r[4]);
  assert.ok(sources(m).includes(`${host}/k8s/kube-apiserver:v1.17.17`));
  assert.not.ok(sources(w).includes(`${host}/k8s/kube-apiserver:v1.17.17`), 'a worker carries no control-plane images');
  assert.ok(sources(w).includes(`${host}/k8s/kube-proxy:v1.17.17`));
  assert.ok(sources(m).includes(`${world.base}/calico/release-v3.13.4.tgz#release-v3.13.4/k8s-manifests/calico.yaml`), 'a member is named by archive#member');
  assert.ok(sources(m).includes(`${world.base}/k8s/v1.17.17/kubeadm`), 'files are found by the URL first boot would fetch');
  const calico = m.index.find((r) => r[4]!.endsWith('calico.yaml'))!;
  assert.match(readFileSync(join(m.dir, calico[3]!), 'utf8'), /calico-node/);
  // The manifest lists what is carried.
  const mb = offline.manifest.nodes.node1!.bundle!;
  assert.is(mb.partition, 2);
  assert.is(mb.items.length, m.index.length);
  assert.ok(offline.manifest.nodes.node1!.bundle!.size > offline.manifest.nodes.node2!.bundle!.size, 'the master carries more');
});

test('image archives load as an OCI archive (ctr import) and as a docker archive (docker load), per skopeo', () => {
  const host = world.registry.host;
  const m = bundleOf('node1');
  const row = m.index.find((r) => r[4] === `${host}/calico/node:v3.13.4`)!;
  const archive = join(m.dir, row[3]!);
  const oci = JSON.parse(sh('skopeo', ['inspect', '--raw', `oci-archive:${archive}`]));
  assert.is(oci.layers.length, 1);
  const cfg = JSON.parse(sh('skopeo', ['inspect', '--config', `oci-archive:${archive}`]));
  assert.is(cfg.architecture, 'arm64');
  const dcfg = JSON.parse(sh('skopeo', ['inspect', '--config', `docker-archive:${archive}`]));
  assert.is(dcfg.architecture, 'arm64');
  // A full copy verifies every blob's digest.
  sh('skopeo', ['copy', '--quiet', `docker-archive:${archive}`, `dir:${join(work, 'copied')}`]);
  assert.ok(readdirSync(join(work, 'copied')).length >= 3);
  const manifestDigest = createHash('sha256').update(sh('skopeo', ['inspect', '--raw', `oci-archive:${archive}`])).digest('hex');
  assert.is(`sha256:${manifestDigest}`, world.pushed[`${host}/calico/node:v3.13.4`], 'the arm64 manifest, byte for byte');
});

test('the bmap covers the bundle: bmaptool copies the image and checks every range', () => {
  const n = offline.manifest.nodes.node1!;
  const img = join(offline.outDir, n.ssd.file);
  const bmap = join(offline.outDir, n.ssd.bmap.file);
  const copy = join(work, 'node1-ssd.copy');
  execFileSync('bmaptool', ['copy', '--bmap', bmap, img, copy], { stdio: ['ignore', 'ignore', 'pipe'] });
  assert.is(sha(copy), n.ssd.sha256);
  // The offline build took the image's sums from the online one (same signature, same bundle): they are the bytes'.
  assert.is(sha(img), n.ssd.sha256, 'the remembered whole-image sha256 is the image file\'s');
  const sums = readdirSync(join(cache, 'images')).find((f) => f.includes('.ssd-checksums-'))!;
  const bundled = JSON.parse(readFileSync(join(cache, 'images', sums), 'utf8')).bundled as [string, { sha256: string }][];
  assert.is(bundled.length, 2, 'one bundled image per node remembered');
  assert.ok(bundled.some(([, b]) => b.sha256 === n.ssd.sha256));
  assert.ok(n.ssd.mappedBytes >= n.bundle!.size, 'the bundle is mapped');
  assert.is(n.ssd.partUuids.length, 2);
});

test('a stale lock is refused naming the entry; offline with a blob missing is refused naming the image', async () => {
  const common = { nodes: 'all' as const, cacheDir: cache, secretsDir: join(work, 'secrets'), sourceDateEpoch: EPOCH, jobs: 1 };
  const text = readFileSync(profile, 'utf8');
  writeFileSync(profile, text.replace('cni-plugins-linux-arm64-v0.8.5.tgz', 'cni-plugins-linux-arm64-v0.8.6.tgz'));
  try {
    await rejects(() => build({ ...common, profile, outDir: join(work, 'out3'), offline: true }), /pi-image\.lock is stale: entry cni-plugins \(kubernetes\.binaries\.cni\.url\) was locked as .*v0\.8\.5\.tgz, the profile now says .*v0\.8\.6\.tgz/);
  } finally {
    writeFileSync(profile, text);
  }
  const lock = readFileSync(join(dirname(profile), 'pi-image.lock'), 'utf8');
  const layer = /digest: (sha256:[0-9a-f]{64})\n\s+size: \d+\n\s+mediaType: application\/vnd\.oci\.image\.layer/.exec(lock)![1]!;
  const store = new BlobStore(cache);
  renameSync(store.path(layer), `${store.path(layer)}.away`);
  try {
    await rejects(() => build({ ...common, profile, outDir: join(work, 'out4'), offline: true }), /^image .*: http:\/\/127\.0\.0\.1:\d+\/v2\/.*\/blobs\/sha256:[0-9a-f]{64}: 1 blob\(s\) not in the cache and --offline was given \(profile key /);
  } finally {
    renameSync(`${store.path(layer)}.away`, store.path(layer));
  }
});

test('first boot (bundle.sh on the SSD image as a disk file): moves, extracts and checks the bundle, frees p2, the brick lands where it always does', () => {
  const n = offline.manifest.nodes.node1!;
  const disk = join(work, 'first-boot-ssd.img');
  copyFileSync(join(offline.outDir, n.ssd.file), disk);
  truncateSync(disk, 512 * 2 ** 20); // the SSD is larger than the image
  const rootSectors = 300 * 2048; // ssd.rootSize of this test: 300 MiB
  const env = join(work, 'fb.env');
  writeFileSync(env, `ROOT_SECTORS='${rootSectors}'\nBRICK='1'\nBRICK_DEVICE='/dev/sda2'\nRUNTIME='docker.io'\n`);
  const bundleDir = join(work, 'fb-bundle');
  const vars = { ...process.env, PI_IMAGE_DISK: disk, PI_IMAGE_ENV: env, PI_IMAGE_BUNDLE: bundleDir, PI_IMAGE_STATE: join(work, 'fb-done'), PI_IMAGE_BUNDLE_SH: join(PACKAGE_ROOT, 'cloud-init', 'bundle.sh') };
  const run = (script: string, ...args: string[]) => spawnSync('bash', [join(PACKAGE_ROOT, 'cloud-init', script), ...args], { env: vars, encoding: 'utf8' });
  const before = JSON.parse(sh('sfdisk', ['--json', disk])).partitiontable.partitions;
  const r = run('firstboot.sh', 'bundle');
  assert.is(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /moving the bundle/);
  assert.match(r.stdout, /\d+ items checked \(sha256\)/);
  const after = JSON.parse(sh('sfdisk', ['--json', disk])).partitiontable.partitions;
  assert.is(after.length, 1, 'p2 freed');
  assert.is(after[0].start, before[0].start);
  assert.is(after[0].size, rootSectors, 'root grown to ssd.rootSize');
  // The brick step now makes the brick right after the root, as without a bundle.
  const b = run('firstboot.sh', 'brick');
  assert.is(b.status, 0, b.stdout + b.stderr);
  const bricked = JSON.parse(sh('sfdisk', ['--json', disk])).partitiontable.partitions;
  assert.is(bricked[1].start, before[0].start + rootSectors);
  // Files come from the bundle by the URL the steps fetch, sha256 checked; an unknown URL is refused.
  const out = join(work, 'fb-kubeadm');
  const f = run('bundle.sh', 'fetch', `${world.base}/k8s/v1.17.17/kubeadm`, out);
  assert.is(f.status, 0, f.stdout + f.stderr);
  assert.is(sha(out), world.sums['/k8s/v1.17.17/kubeadm']);
  assert.is(run('bundle.sh', 'fetch', `${world.base}/k8s/v1.17.17/kubeadm-not-there`, out).status, 3);
  // A damaged item stops with its name.
  const calico = readFileSync(join(bundleDir, 'pi-image-bundle', 'index.tsv'), 'utf8').split('\n').find((l) => l.includes('calico.yaml'))!.split('\t')[3]!;
  writeFileSync(join(bundleDir, calico), 'kind: Tampered\n');
  const v = run('bundle.sh', 'verify');
  assert.is(v.status, 1);
  assert.match(v.stdout, new RegExp(`FAILED: bundle item damaged: ${calico.replace(/[./]/g, '\\$&')} \\(.*calico\\.yaml\\): sha256 mismatch`));
  rmSync(join(bundleDir, calico));
  assert.match(run('bundle.sh', 'verify').stdout, /FAILED: bundle item missing: /);
  assert.ok(existsSync(join(bundleDir, 'pi-image-bundle', 'index.tsv')));
});

test.run();
