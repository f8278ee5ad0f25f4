// "Behaviour unchanged", as bytes: a reference build (all four nodes of profiles/yarpi4.yaml from a small lookalike
// base image, SOURCE_DATE_EPOCH fixed, a secrets directory with fixed keys) must give the sha256s recorded below.
// A refactor that claims to change nothing keeps them; a change that alters the output on purpose updates them
// and says in its commit message why the bytes changed.
// The base image is made at test time by mkfs.vfat/mkfs.ext4 (test/helpers/lookalike.ts): its own sha256 is
// recorded too, so a different dosfstools/e2fsprogs release is told apart from a change in pi-image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUbuntuLookalike, tempDir, type Lookalike } from '../helpers/lookalike.ts';
import { writeFixedSecrets } from '../helpers/fixed-secrets.ts';
import { build, type BuildResult } from '../../lib/assemble/build.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const EPOCH = 1577836800; // 2020-01-01

// Recorded on 2026-12-01 from commit 371b306 (main before issue 16's refactor; the lookalike's ext4 ctimes fixed,
// test/helpers/lookalike.ts), with e2fsprogs 1.47.0 and dosfstools from Debian's archive.
// A change to any of these must be explained in the commit that makes it.
// Changed once since, on purpose (c97e54e): the SD images' cluster.env gained PACKAGES (the package list first boot
// installs, one list with the lock's) in place of EXTRA_PACKAGES, so sd.img and the manifest's sha256s moved; the
// SSD images and the base did not. h3's, h4's and h5's refactors left all of them unchanged. Changed again (448e756):
// cloud-init/bundle.sh, which the seed carries, settles udev and retries partx; sd.img and the manifest only. And
// again (issue 18): the SD images' FAT zeroes the clusters a seed file gives up when it is shorter than the base's
// (FatOpenOptions.zeroFreed), so sd.img and the manifest moved; the SSD images and the base did not. Then the
// manifest alone: the SD images' bmaps split their ranges where the unchanged copy of the base's boot files starts
// and ends (image/digest.ts CopiedRanges), so sd.img.bmap's sha256 in the manifest moved; no image did.
const RECORDED = {
  base: 'afd53f659f2b57f864ff705801e610881f13a8a43d65132c8414ce897c29ce47',
  manifest: '441cf12caeddea7a3ba6c3db745afa4c4495bc1d06efd344adbc336d25f9c5a9',
  images: {
    node1: { sd: '7e50b2f56921494e67f726ece2dcdab2918299b0c957dc9157c50c47638f827e', ssd: '931f7044eb8bf8e594de56c248712fe8c793f94beb37590fd0aca4e2421004af' },
    node2: { sd: 'e4f2a75f02287e7f3b4e867d99f6606555d5fea35f901bdd8c5c144aca2be371', ssd: 'd8906bca71561b3aaa17484b2fe5d67fc27ef99f788c7301848d8e44015ec14d' },
    node3: { sd: 'ede1f962e10c5e687c01f71692d98fead80645e658b5d0ceb0240553d7816a36', ssd: 'a65ee1aa5943b493397f620e075b5e3122b193481b3ff6df10ce505b9aea5627' },
    node4: { sd: 'eabde67d81cdc922eabc58f1b6822928178104ff2380e4a22fc284177d10e81b', ssd: 'd7b5dc501cc9446ea116c045c42c099a76033b8d649c687ce7fda47e2c602840' },
  } as Record<string, { sd: string; ssd: string }>,
};

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

let work: string;
let look: Lookalike;
let first: BuildResult;
let second: BuildResult;

const run = (out: string) => build({
  nodes: 'all', image: look.img, outDir: join(work, out), cacheDir: join(work, 'cache'), secretsDir: join(work, 'secrets'),
  sourceDateEpoch: EPOCH, profile: join(ROOT, 'profiles', 'yarpi4.yaml'), jobs: 1,
});

test.before(async () => {
  work = tempDir('pi-image-reference-');
  look = await makeUbuntuLookalike(join(work, 'base'), { variant: 'late2019', legacyCmdline: true, bootMiB: 40, rootMiB: 32, bulkBytes: 256 * 1024, kernelBytes: 1 << 20 });
  writeFixedSecrets(join(work, 'secrets'), 'yarpi4');
  first = await run('out1');
  second = await run('out2');
});

test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const observed = (r: BuildResult) => ({
  manifest: sha(r.manifestPath),
  images: Object.fromEntries(Object.keys(r.manifest.nodes).map((n) => [n, { sd: sha(join(r.outDir, n, 'sd.img')), ssd: sha(join(r.outDir, n, 'ssd.img')) }])),
});

test('two builds from the same inputs are byte-identical (so the recorded sha256s are stable)', () => {
  const a = observed(first);
  assert.equal(Object.keys(a.images), ['node1', 'node2', 'node3', 'node4']);
  assert.equal(observed(second), a);
});

test('the lookalike base image is the one the sha256s were recorded from', () => {
  assert.is(sha(look.img), RECORDED.base, 'the base image differs: the mkfs tools changed, so this guard cannot tell; re-record it from the commit before your change');
});

test('the reference build gives the recorded sha256s (sd.img, ssd.img, manifest.json)', () => {
  const got = observed(first);
  assert.equal(got.images, RECORDED.images);
  assert.is(got.manifest, RECORDED.manifest);
});

test.run();
