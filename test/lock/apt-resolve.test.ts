// The apt resolver end to end against a real signed archive on 127.0.0.1 (dpkg-deb, apt-ftparchive, gpg) and a
// base image made with mkfs.ext4 -d: the closure (a version constraint met only by -updates, an alternative, a
// virtual package, a versioned Provides, :any, Pre-Depends, an installed package and an installed alternative,
// Recommends off, NotAutomatic backports ignored) equals what `apt-get install --simulate` computes for the same
// archive and status; the keyring comes from the image (binary with two keys, signed-by); refusals: an
// unsatisfiable chain, a bad or untrusted InRelease signature, a Packages and a .deb sha256 mismatch.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { resolveAptPackages, readImageAptState, type AptLockEntry } from '../../lib/lock/apt/index.ts';
import { UnsatisfiableError } from '../../lib/lock/apt/closure.ts';
import { VerifyError } from '../../lib/errors.ts';
import { Ext4Fs } from '../../lib/image/ext4/index.ts';
import { FileIO } from '../../lib/image/io.ts';
import { aptFixture, type AptFixture, SOURCES_LIST, SECURITY_SOURCES } from '../helpers/apt-fixture.ts';
import { aptSimulate, serveDir, makeExt4, sh, tmp } from '../helpers/apt-repo.ts';

/** Await `fn`, which must reject with an error matching `want` (a RegExp on the message, or a predicate). */
async function rejects(fn: () => Promise<unknown>, want: RegExp | ((e: unknown) => boolean)): Promise<void> {
  try {
    await fn();
  } catch (e) {
    const ok = want instanceof RegExp ? want.test((e as Error).message) : want(e);
    assert.ok(ok, `unexpected error: ${(e as Error).message}`);
    return;
  }
  assert.unreachable('it resolved');
}

let f: AptFixture;
let n = 0;
const cacheDir = (): string => join(f.dir, `cache-${n++}`);
const resolve = (o: { roles: Record<string, string[]>; mirror?: string; root?: Ext4Fs; cache?: string; fetchDebs?: boolean }): Promise<AptLockEntry[]> =>
  resolveAptPackages({ root: o.root ?? f.root, imageName: 'test.img', roles: o.roles, codename: 'eoan', mirror: o.mirror ?? f.server.url, cacheDir: o.cache ?? cacheDir(), fetchDebs: o.fetchDebs });

test.before(async () => {
  f = await aptFixture();
});
test.after(async () => {
  await f.close();
});

const EXPECTED = [
  ['alt-b', '1:0.5'], ['alt-b-data', '1:0.5'], ['app', '1.0-1'], ['base-thing', '1.5'], ['libfoo', '2.1-0ubuntu1'], ['libvimpl', '3.1'],
  ['lynx', '2.9.0~dev.3-1'], ['perlish', '5.30'], ['predep', '0.9'], ['tool', '2.0+sec1'], ['upgrader', '1.0'],
];

test('the image state is read through the ext4 reader: status, architecture, sources, keyring', () => {
  const s = readImageAptState(f.root, 'test.img');
  assert.is(s.architecture, 'arm64');
  assert.equal(s.installed.map((p) => p.package), ['dpkg', 'libc6', 'base-thing', 'mail-b']);
  assert.equal(s.sources.map((x) => x.suite), ['eoan', 'eoan-updates', 'eoan-backports', 'eoan-security']);
  assert.equal(s.sources[3].signedBy, ['/usr/share/keyrings/test-archive.gpg']);
  assert.equal(s.defaultKeyFiles.map((k) => k.name), ['test.img:/etc/apt/trusted.gpg.d/test.gpg']);
});

test('closure: constraints, alternatives, virtual and versioned provides, installed packages; equal to apt-get --simulate', async () => {
  const entries = await resolve({ roles: { worker: ['app', 'tool', 'upgrader'] } });
  const got = entries.map((e) => [e.package, e.version]);
  assert.equal(got, EXPECTED);
  const app = entries.find((e) => e.package === 'app')!;
  assert.is(app.url, `${f.server.url}pool/eoan/main/app_1.0-1_arm64.deb`);
  assert.is(app.control['Pre-Depends'], 'predep');
  assert.is(entries.find((e) => e.package === 'libfoo')!.suite, 'eoan-updates');
  assert.is(entries.find((e) => e.package === 'predep')!.architecture, 'all');
  for (const e of entries) {
    assert.match(e.sha256, /^[0-9a-f]{64}$/);
    assert.ok(e.size > 0);
    assert.equal(e.roles, ['worker']);
  }
  // apt's own resolver on the same archive, status file and key, in a private state directory.
  const sources = ['eoan', 'eoan-updates', 'eoan-security', 'eoan-backports'].map((s) => `deb ${f.server.url} ${s} main universe`).join('\n') + '\n';
  const apt = await aptSimulate({ dir: join(f.dir, 'sim'), sourcesList: sources, status: f.status, keyring: f.key.binary, arch: 'arm64', packages: ['app', 'tool', 'upgrader'] });
  assert.equal(got, apt);
});

test('roles are closed apart and merged; the .debs are fetched and checked once, then reused from the cache', async () => {
  const cache = cacheDir();
  const roles = { master: ['tool', 'uni-pkg'], worker: ['uni-pkg', 'predep'] };
  const first = await resolve({ roles, cache });
  assert.equal(first.map((e) => [e.package, e.roles.join(',')]), [['libfoo', 'master,worker'], ['predep', 'worker'], ['tool', 'master'], ['uni-pkg', 'master,worker']]);
  const debs = readdirSync(join(cache, 'downloads')).filter((x) => x.endsWith('.deb'));
  assert.is(debs.length, 4);
  const before = f.server.requests.filter((p) => p.endsWith('.deb')).length;
  const again = await resolve({ roles, cache });
  assert.equal(again, first);
  assert.is(f.server.requests.filter((p) => p.endsWith('.deb')).length, before, 'no .deb fetched again');
});

test('an unsatisfiable dependency fails naming the role and the chain', async () => {
  try {
    await resolve({ roles: { worker: ['tool', 'top'] }, fetchDebs: false });
    assert.unreachable('resolved');
  } catch (e) {
    assert.instance(e, UnsatisfiableError);
    assert.is((e as Error).message, 'role worker: top -> broken (>= 1) -> needs-new (>= 2): no version satisfies (needs-new: candidate 1.0)');
  }
  await rejects(() => resolve({ roles: { master: ['no-such-thing'] }, fetchDebs: false }), /role master: no-such-thing: no package of that name/);
});

/** A copy of the archive to damage, served on its own port. */
async function damaged(change: (root: string) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const root = join(f.dir, `archive-${n++}`);
  cpSync(f.archive, root, { recursive: true });
  change(root);
  return serveDir(root);
}

test('a bad InRelease signature is refused, naming the URL', async () => {
  const s = await damaged((root) => {
    const p = join(root, 'dists/eoan-updates/InRelease');
    const text = readFileSync(p, 'utf8');
    const m = /^ ([0-9a-f]{64}) /m.exec(text)!;
    writeFileSync(p, text.replace(m[1], m[1].replace(/^./, (c) => (c === '0' ? '1' : '0'))));
  });
  try {
    await rejects(() => resolve({ roles: { worker: ['tool'] }, mirror: s.url, fetchDebs: false }), (e: unknown) => e instanceof VerifyError && (e as Error).message.startsWith(`${s.url}dists/eoan-updates/InRelease: BAD signature by key`));
  } finally {
    await s.close();
  }
});

test('an InRelease signed by a key the source does not trust (signed-by) is refused', async () => {
  const s = await damaged((root) => {
    const dist = join(root, 'dists/eoan-security');
    sh('gpg', ['--batch', '--yes', '--clearsign', '-o', join(dist, 'InRelease'), join(dist, 'Release')], { env: f.other.env });
  });
  try {
    await rejects(() => resolve({ roles: { worker: ['tool'] }, mirror: s.url, fetchDebs: false }), /dists\/eoan-security\/InRelease: no signature by a trusted key \(signed by [0-9A-F]{16}\)/);
  } finally {
    await s.close();
  }
});

test('a Packages index whose sha256 is not the one InRelease signed is refused, and not cached', async () => {
  const s = await damaged((root) => {
    const p = join(root, 'dists/eoan/main/binary-arm64/Packages');
    writeFileSync(p, readFileSync(p, 'utf8').replace('Version: 2.0\n', 'Version: 99.0\n'));
    execFileSync('xz', ['-k', '-f', p]);
  });
  const cache = cacheDir();
  try {
    await rejects(() => resolve({ roles: { worker: ['tool'] }, mirror: s.url, cache, fetchDebs: false }), (e: unknown) => e instanceof VerifyError && /dists\/eoan\/main\/binary-arm64\/Packages\.xz: sha256 mismatch/.test((e as Error).message));
    assert.equal(readdirSync(join(cache, 'downloads')).filter((x) => x.includes('Packages') && !x.includes('updates')).filter((x) => !existsSync(join(cache, 'downloads', `${x}.json`)) && !x.endsWith('.json')), []);
    assert.not.ok(readdirSync(join(cache, 'downloads')).some((x) => x.includes('.partial')));
  } finally {
    await s.close();
  }
});

test('a .deb whose sha256 is not the one Packages lists is refused, and not cached', async () => {
  const s = await damaged((root) => {
    const p = join(root, 'pool/eoan-security/main/tool_2.0+sec1_arm64.deb');
    writeFileSync(p, Buffer.concat([readFileSync(p), Buffer.from('tampered')]));
  });
  const cache = cacheDir();
  try {
    await rejects(() => resolve({ roles: { worker: ['tool'] }, mirror: s.url, cache }), /pool\/eoan-security\/main\/tool_2\.0\+sec1_arm64\.deb: sha256 mismatch/);
    assert.not.ok(readdirSync(join(cache, 'downloads')).some((x) => x.endsWith('.deb') || x.includes('.partial')));
  } finally {
    await s.close();
  }
});

test('signed-by naming a keyring without the archive key refuses that suite; an armored .asc keyring works', async () => {
  const dir = tmp();
  try {
    const img = makeExt4(dir, {
      'var/lib/dpkg/status': f.status,
      'etc/apt/sources.list': SOURCES_LIST,
      'etc/apt/sources.list.d/security.sources': SECURITY_SOURCES,
      'etc/apt/trusted.gpg.d/archive.asc': f.key.armored,
      'usr/share/keyrings/test-archive.gpg': f.other.binary,
    });
    const root = Ext4Fs.open(FileIO.open(img));
    await rejects(() => resolve({ roles: { worker: ['tool'] }, root, fetchDebs: false }), /eoan-security\/InRelease: no signature by a trusted key/);
    const ok = makeExt4(join(dir, 'b'), {
      'var/lib/dpkg/status': f.status,
      'etc/apt/sources.list': SOURCES_LIST,
      'etc/apt/trusted.gpg.d/archive.asc': f.key.armored,
    });
    const entries = await resolve({ roles: { worker: ['uni-pkg'] }, root: Ext4Fs.open(FileIO.open(ok)), fetchDebs: false });
    assert.equal(entries.map((e) => e.package), ['libfoo', 'uni-pkg']);
  } finally {
    sh('rm', ['-rf', dir]);
  }
});

test.run();
