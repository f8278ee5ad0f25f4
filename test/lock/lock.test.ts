// `lock` end to end against real servers on 127.0.0.1: Debian's docker-registry behind bearer tokens with images
// pushed by skopeo, and a file server; the lock's sums, digests and roles; byte-identical reruns; every refusal
// (404, HTML, checksum mismatch, amd64-only image, redirect loop, wrong-architecture binary) names artifact, URL
// and key and writes nothing; staleness names the entry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUbuntuLookalike, tempDir } from '../helpers/lookalike.ts';
import { startLockWorld, lockProfile, type LockWorld } from '../helpers/lock-fixtures.ts';
import { makeLock, readLock } from '../../lib/lock/lock.ts';
import { decodeLock, encodeLock, staleReason } from '../../lib/lock/lockfile.ts';
import { profileRequests } from '../../lib/lock/requests.ts';
import { parseProfile } from '../../lib/cluster/profile.ts';
import { LockRefusal } from '../../lib/lock/errors.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let work: string;
let world: LockWorld;
let baseImg: string;
let cache: string;

function writeProfile(name: string, edit?: (t: string) => string): string {
  const dir = join(work, name);
  mkdirSync(dir, { recursive: true });
  const p = join(dir, 'pi-image.yaml');
  writeFileSync(p, lockProfile(world, baseImg, edit));
  return p;
}
const fast = { retries: 0, backoffMs: 10 };

test.before(async () => {
  work = tempDir('pi-image-lock-');
  const look = await makeUbuntuLookalike(join(work, 'base'), { extraRootFiles: { 'var/lib/dpkg/arch': 'arm64\n' } });
  baseImg = look.img;
  cache = join(work, 'cache');
  world = await startLockWorld(join(work, 'world'));
});
test.after(async () => {
  await world?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('lock pins files with how their sum was established, members by archive + path, images per platform and role', async () => {
  const profile = writeProfile('good');
  const r = await makeLock({ profile, cacheDir: cache, ...fast });
  assert.is(r.path, join(dirname(profile), 'pi-image.lock'));
  assert.ok(existsSync(r.path));
  const l = r.lock;
  assert.is(l.platform, 'linux/arm64');
  assert.match(r.platform.source, /var\/lib\/dpkg\/arch/);
  const f = (id: string) => l.files.find((x) => x.id === id)!;
  assert.is(f('kubeadm').sum, 'published');
  assert.is(f('kubeadm').sha256, world.sums['/k8s/v1.17.17/kubeadm']);
  assert.is(f('kubectl').sum, 'pinned-at-lock', 'no .sha256 is published for kubectl');
  assert.is(f('kubectl').sha256, world.sums['/k8s/v1.17.17/kubectl']);
  assert.is(f('crictl').sum, 'pinned-at-lock');
  assert.is(f('cni-plugins').sum, 'published');
  const calico = f('calico/calico.yaml');
  assert.is(calico.member, 'release-v3.13.4/k8s-manifests/calico.yaml');
  assert.is(calico.url, `${world.base}/calico/release-v3.13.4.tgz`);
  assert.is(calico.archive!.sha256, world.sums['/calico/release-v3.13.4.tgz']);
  const member = execFileSync('tar', ['-xzOf', join(work, 'world', 'release-v3.13.4.tgz'), 'release-v3.13.4/k8s-manifests/calico.yaml']);
  assert.is(calico.size, member.length);
  // Images: kubeadm's seven plus the three the manifests name, each the arm64 manifest that was pushed.
  const host = world.registry.host;
  assert.is(l.images.length, 10);
  for (const img of l.images) {
    assert.is(img.digest, world.pushed[img.id], img.id);
    assert.is(img.platform, 'linux/arm64');
    assert.ok(img.layers.length === 1 && img.layers[0]!.digest.startsWith('sha256:'));
  }
  assert.ok(l.images.find((i) => i.id === `${host}/calico/cni:v3.13.4`)!.index, 'resolved through the index');
  assert.ok(world.registry.token!.requests.length > 0, 'the bearer challenge was answered');
  // Roles: a worker carries no control-plane images and no add-on manifests, but kube-proxy, pause and Calico.
  const w = l.roles.worker;
  assert.not.ok(w.images.includes(`${host}/k8s/kube-apiserver:v1.17.17`));
  assert.not.ok(w.images.includes(`${host}/k8s/etcd:3.4.3-0`));
  assert.ok(w.images.includes(`${host}/k8s/kube-proxy:v1.17.17`));
  assert.ok(w.images.includes(`${host}/calico/node:v3.13.4`));
  assert.not.ok(w.files.includes('calico/calico.yaml'));
  assert.not.ok(w.files.includes('heketi'));
  assert.ok(w.files.includes('kubelet'));
  assert.ok(l.roles.master.images.includes(`${host}/k8s/kube-apiserver:v1.17.17`));
  assert.ok(l.roles.master.files.includes('heketi'));
  // The text decodes to the same lock and encodes to the same bytes.
  assert.is(encodeLock(decodeLock(r.text)), r.text);
});

test('lock run twice, once through the CLI, writes byte-identical files', async () => {
  const profile = writeProfile('good');
  const before = readFileSync(join(dirname(profile), 'pi-image.lock'));
  // Spawned, not execFileSync: the token endpoint runs in this process and must keep answering.
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'pi-image.js'), 'lock', '--profile', profile, '--cache', cache, '--no-apt', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let o = '';
    let e = '';
    p.stdout.on('data', (d) => (o += d));
    p.stderr.on('data', (d) => (e += d));
    p.on('close', (code) => (code === 0 ? resolve(o) : reject(new Error(`pi-image lock exited ${code}: ${e}`))));
  });
  const result = JSON.parse(out.trim().split('\n').pop()!);
  assert.is(result.event, 'result');
  assert.is(result.changed, false);
  assert.is(result.platform, 'linux/arm64');
  assert.ok(readFileSync(join(dirname(profile), 'pi-image.lock')).equals(before));
  const again = await makeLock({ profile, cacheDir: cache, ...fast });
  assert.is(again.changed, false);
  assert.ok(readFileSync(again.path).equals(before));
});

test('lock --help shows examples', () => {
  const out = execFileSync(process.execPath, [join(ROOT, 'bin', 'pi-image.js'), 'lock', '--help'], { encoding: 'utf8' });
  assert.match(out, /Examples:/);
  assert.match(out, /pi-image lock --profile/);
});

const refusals: [string, (t: string) => string, RegExp][] = [
  ['an HTML page where YAML is expected', (t) => t.replace(/manifest: .*#.*\n/, `manifest: ${'BASE'}/docs/v3.13/manifests/calico.yaml\n`), /^calico\/calico\.yaml: http:\/\/127\.0\.0\.1:\d+\/docs\/v3\.13\/manifests\/calico\.yaml: (an HTML page where YAML was expected|the server answered with an HTML page, not the file .*) \(profile key kubernetes\.calico\.manifest\)$/],
  ['a 404', (t) => t.replace('/metallb/metallb.yaml', '/metallb/v0.9.3/metallb.yaml'), /^metallb\/metallb\.yaml: http:\/\/127\.0\.0\.1:\d+\/metallb\/v0\.9\.3\/metallb\.yaml: HTTP 404.*\(profile key kubernetes\.metallb\.manifests\[1\]\)$/],
  ['a checksum mismatch', (t) => t.replace('/k8s/v{version}', '/badsum/v{version}'), /^kubeadm: http:\/\/127\.0\.0\.1:\d+\/badsum\/v1\.17\.17\/kubeadm: checksum mismatch: expected 0{64}.*\(profile key kubernetes\.binaries\.baseUrl\)$/],
  ['an image with no arm64 variant', (t) => t.replace('enabled: false', 'enabled: true\n    image: null'), /^image 127\.0\.0\.1:\d+\/ingress\/nginx-ingress-controller:0\.30\.0: http:\/\/127\.0\.0\.1:\d+\/v2\/ingress\/nginx-ingress-controller\/manifests\/0\.30\.0: no variant for linux\/arm64: the image is linux\/amd64 only \(profile key kubernetes\.ingressNginx\.manifests\[0\]\)$/],
  ['a redirect loop', (t) => t.replace(/crictl: \{ url: [^ ]+ \}/, `crictl: { url: BASE/loop }`), /^crictl: http:\/\/127\.0\.0\.1:\d+\/loop: redirect loop.*\(profile key kubernetes\.binaries\.crictl\.url\)$/],
  ['binaries for another architecture', (t) => t.replace('/k8s/v{version}', '/amd64/v{version}'), /^kubeadm: .*\/amd64\/v1\.17\.17\/kubeadm: an ELF binary for amd64, the image is arm64 \(profile key kubernetes\.binaries\.baseUrl\)$/],
];
for (const [what, edit, re] of refusals) {
  test(`lock refuses ${what} in one line naming artifact, URL and key, and writes nothing`, async () => {
    const name = `bad-${what.replace(/\W+/g, '-')}`;
    const profile = writeProfile(name, (t) => edit(t).replaceAll('BASE', world.base));
    let err: unknown;
    try {
      await makeLock({ profile, cacheDir: cache, ...fast });
    } catch (e) {
      err = e;
    }
    assert.instance(err, LockRefusal, String(err));
    assert.match((err as Error).message, re, (err as Error).message);
    assert.not.match((err as Error).message, /\n/);
    assert.not.ok(existsSync(join(dirname(profile), 'pi-image.lock')), 'no lock written');
  });
}

test('a changed profile makes the lock stale, naming the entry', async () => {
  const profile = writeProfile('good');
  const { lock } = readLock(profile)!;
  const same = parseProfile(readFileSync(profile, 'utf8'));
  assert.is(staleReason(lock, profileRequests(same).all, 'linux/arm64'), undefined);
  const moved = parseProfile(lockProfile(world, baseImg, (t) => t.replace('cni-plugins-linux-arm64-v0.8.5.tgz', 'cni-plugins-linux-arm64-v0.8.6.tgz')));
  assert.match(staleReason(lock, profileRequests(moved).all)!, /^entry cni-plugins \(kubernetes\.binaries\.cni\.url\) was locked as .*v0\.8\.5\.tgz, the profile now says .*v0\.8\.6\.tgz$/);
  const noHeketi = parseProfile(lockProfile(world, baseImg, (t) => t.replace('  heketi:\n', '  heketi:\n    enabled: false\n')));
  assert.match(staleReason(lock, profileRequests(noHeketi).all)!, /^entry heketi \(glusterfs\.heketi\.download\.url\) is in the lock but no longer in the profile$/);
  assert.match(staleReason(lock, profileRequests(same).all, 'linux/amd64')!, /lock is for linux\/arm64/);
});

test.run();
