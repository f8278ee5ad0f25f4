// kubernetes.ingressNginx.image: pi-image's edit of the ingress-nginx manifests' controller image, seen by the lock.
// Real parts: Debian's docker-registry with bearer-token auth, images pushed by skopeo from OCI layouts made here.
// ingress-nginx 0.30.0's mandatory.yaml names an amd64-only controller: kept as is (image: null) the lock refuses it;
// pointed at an arm64 variant the lock passes and pins that image, not the amd64 one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeUbuntuLookalike, tempDir } from '../helpers/lookalike.ts';
import { startLockWorld, lockProfile, type LockWorld } from '../helpers/lock-fixtures.ts';
import { makeOciLayout, pushImage } from '../helpers/registry.ts';
import { makeLock, readLock } from '../../lib/lock/lock.ts';
import { LockRefusal } from '../../lib/lock/errors.ts';
import { staleReason } from '../../lib/lock/lockfile.ts';
import { profileRequests } from '../../lib/lock/requests.ts';
import { editManifestImages, manifestImageEdits } from '../../lib/cluster/addons.ts';
import { parseProfile } from '../../lib/cluster/profile.ts';
import { INGRESS_NGINX_ARM64_IMAGE } from '../../lib/cluster/schema.ts';

let work: string;
let world: LockWorld;
let baseImg: string;
let cache: string;
let arm64Digest: string;
const fast = { retries: 0, backoffMs: 10 };

test.before(async () => {
  work = tempDir('pi-image-ingress-');
  baseImg = (await makeUbuntuLookalike(join(work, 'base'), { extraRootFiles: { 'var/lib/dpkg/arch': 'arm64\n' } })).img;
  cache = join(work, 'cache');
  world = await startLockWorld(join(work, 'world'));
  const img = makeOciLayout(join(work, 'oci-arm64'), '0.30.0', ['arm64']);
  await pushImage(img, world.registry, 'ingress/nginx-ingress-controller-arm64');
  arm64Digest = img.manifests.arm64!;
});
test.after(async () => {
  await world?.close().catch(() => {});
  if (work) rmSync(work, { recursive: true, force: true });
});

function writeProfile(name: string, image: string): string {
  mkdirSync(join(work, name));
  const p = join(work, name, 'pi-image.yaml');
  writeFileSync(p, lockProfile(world, baseImg, (t) => t.replace('enabled: false', `enabled: true\n    image: ${image}`)));
  return p;
}

/** The lock's refusal message for a profile (it must refuse, with a LockRefusal). */
async function refusal(profile: string): Promise<string> {
  try {
    await makeLock({ profile, cacheDir: cache, ...fast });
  } catch (e) {
    assert.instance(e, LockRefusal, String(e));
    return (e as Error).message;
  }
  throw new Error(`the lock of ${profile} was not refused`);
}

test('the reference default is 0.30.0\'s separate arm64 controller image; the edit touches the ingress manifests only', () => {
  const p = parseProfile(lockProfile(world, baseImg, (t) => t.replace('enabled: false', 'enabled: true')));
  assert.is(p.kubernetes.ingressNginx.image, INGRESS_NGINX_ARM64_IMAGE);
  assert.is(INGRESS_NGINX_ARM64_IMAGE, 'quay.io/kubernetes-ingress-controller/nginx-ingress-controller-arm64:0.30.0');
  const text = 'spec:\n  containers:\n    - name: c\n      image: "quay.io/kubernetes-ingress-controller/nginx-ingress-controller:0.30.0" # amd64\n    - name: other\n      image: busybox:1\n';
  const edited = editManifestImages(text, manifestImageEdits(p, 'kubernetes.ingressNginx.manifests[0]'));
  assert.is(edited, text.replace('nginx-ingress-controller:0.30.0', 'nginx-ingress-controller-arm64:0.30.0'));
  assert.is(editManifestImages(text, manifestImageEdits(p, 'kubernetes.metallb.manifests[0]')), text);
});

/** The `sed` line first boot's addons step runs on each ingress manifest, taken from the shipped firstboot.sh. */
function firstbootSed(): string {
  const lines = readFileSync(join(import.meta.dirname, '..', '..', 'cloud-init', 'firstboot.sh'), 'utf8').split('\n');
  const at = lines.findIndex((l) => l.includes('INGRESS_IMAGE') && /^\s*sed -E -i /.test(l));
  assert.ok(at >= 0, 'firstboot.sh has the ingress image sed');
  return lines[at]!.trim();
}

test('first boot\'s sed makes the same edit of the ingress manifests as the lock saw (editManifestImages)', () => {
  const p = parseProfile(lockProfile(world, baseImg, (t) => t.replace('enabled: false', 'enabled: true')));
  const edits = manifestImageEdits(p, 'kubernetes.ingressNginx.manifests[0]');
  const text = [
    'spec:',
    '  containers:',
    '    - name: controller',
    '      image: quay.io/kubernetes-ingress-controller/nginx-ingress-controller:0.30.0',
    '    - image: "quay.io/kubernetes-ingress-controller/nginx-ingress-controller-amd64:0.30.0" # amd64 only',
    "      image: 'registry.k8s.io/ingress-nginx/controller:v1.9.4@sha256:" + 'a'.repeat(64) + "'",
    '      image: nginx-ingress-controller',
    '      image: busybox:1',
    '      image: quay.io/other/controller:1',
    '  # image: quay.io/kubernetes-ingress-controller/nginx-ingress-controller:0.30.0 in a comment, column 2',
    '',
  ].join('\n');
  const file = join(work, 'ingress-sed.yaml');
  writeFileSync(file, text);
  const sh = `INGRESS_IMAGE='${p.kubernetes.ingressNginx.image}'; tmp='${work}'; i=sed; ${firstbootSed()}`;
  writeFileSync(join(work, 'ingress-sed.sh'), `${sh}\n`);
  const r = spawnSync('bash', [join(work, 'ingress-sed.sh')], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const want = editManifestImages(text, edits);
  assert.is.not(want, text, 'the edit changes something');
  assert.is(readFileSync(join(work, 'ingress-sed.yaml'), 'utf8'), want);
});

test('image: null keeps the manifest\'s amd64-only controller: the lock refuses it, naming the image and key, writes nothing', async () => {
  const profile = writeProfile('amd64', 'null');
  assert.match(await refusal(profile), /^image 127\.0\.0\.1:\d+\/ingress\/nginx-ingress-controller:0\.30\.0: .*no variant for linux\/arm64: the image is linux\/amd64 only \(profile key kubernetes\.ingressNginx\.manifests\[0\]\)$/);
  assert.not.ok(existsSync(join(work, 'amd64', 'pi-image.lock')));
});

test('kubernetes.ingressNginx.image at an arm64 variant: the lock passes and pins the edited image, not the amd64 one', async () => {
  const ref = `${world.registry.host}/ingress/nginx-ingress-controller-arm64:0.30.0`;
  const profile = writeProfile('arm64', ref);
  await makeLock({ profile, cacheDir: cache, ...fast });
  const { lock } = readLock(profile)!;
  const ids = lock.images.map((i) => i.id);
  const got = lock.images.find((i) => i.id === ref);
  assert.ok(got, `${ref} not in the lock: ${ids.join(', ')}`);
  assert.is(got!.digest, arm64Digest);
  assert.not.ok(ids.some((i) => /\/nginx-ingress-controller:0\.30\.0$/.test(i)), 'the amd64 image is not locked');
  assert.ok(lock.roles.worker.images.includes(ref) && lock.roles.master.images.includes(ref));
  // Another image under the key makes the lock stale, naming it.
  const moved = parseProfile(readFileSync(profile, 'utf8').replace(ref, ref.replace(':0.30.0', ':0.30.1')));
  assert.match(staleReason(lock, profileRequests(moved).all, 'linux/arm64') ?? '', /ingressNginx\.image|nginx-ingress-controller-arm64:0\.30\.1/);
});

test('a wrong kubernetes.ingressNginx.image is refused naming that key', async () => {
  const profile = writeProfile('missing', `${world.registry.host}/ingress/no-such-controller:0.30.0`);
  assert.match(await refusal(profile), /no-such-controller:0\.30\.0.*\(profile key kubernetes\.ingressNginx\.image\)$/);
});

test.run();
