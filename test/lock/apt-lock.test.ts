// The lock's OS packages end to end here: `pi-image lock` (the CLI, so its apt resolver is the one users get)
// against the signed local archive of apt-fixture.ts, reading dpkg's status, the sources and the keyring from an
// Ubuntu look-alike disk image through the ext4 reader; then `build --offline`: the SSD's bundle partition read
// back with dd + tar holds each locked .deb under apt's cache name, SHA256SUMS and a Packages index that
// `apt-get --simulate` accepts (the same closure as the lock); a changed apt.packages makes the lock stale naming
// the entry; a rerun writes the same bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeUbuntuLookalike, tempDir } from '../helpers/lookalike.ts';
import { aptFixture, INSTALLED, SOURCES_LIST, SECURITY_SOURCES, type AptFixture } from '../helpers/apt-fixture.ts';
import { statusText } from '../helpers/apt-repo.ts';
import { decodeLock } from '../../lib/lock/lockfile.ts';
import { build } from '../../lib/assemble/build.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let work: string;
let f: AptFixture;
let profile: string;
let image: string;
const cache = () => join(work, 'cache');
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(ROOT, 'bin', 'pi-image.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ code: code ?? -1, out, err }));
  });
}

const profileText = (packages: string[]) => `apiVersion: pi-image/v1
cluster: { name: apttest }
image: ${image}
nodes:
  - { name: node1, role: master, address: 10.0.0.11/24 }
defaults: { gateway: 10.0.0.1 }
ssd: { rootSize: 4GiB, brick: false }
kubernetes: { enabled: false }
glusterfs: { enabled: false }
apt: { mirror: ${f.server.url}, packages: [${packages.join(', ')}] }
`;

test.before(async () => {
  work = tempDir('pi-image-apt-lock-');
  f = await aptFixture();
  // first boot's own list (curl, ca-certificates, gnupg) is already in this image; `app` and `tool` are not.
  const status = statusText([...INSTALLED, { name: 'curl', version: '7.65.3-1ubuntu3' }, { name: 'ca-certificates', version: '20190110' }, { name: 'gnupg', version: '2.2.12-1ubuntu3' }]);
  const look = await makeUbuntuLookalike(join(work, 'base'), {
    extraRootFiles: {
      'var/lib/dpkg/status': status,
      'var/lib/dpkg/arch': 'arm64\n',
      'etc/apt/sources.list': SOURCES_LIST,
      'etc/apt/sources.list.d/security.sources': SECURITY_SOURCES,
      'etc/apt/trusted.gpg.d/test.gpg': Buffer.concat([f.other.binary, f.key.binary]),
      'usr/share/keyrings/test-archive.gpg': f.key.binary,
    },
  });
  image = look.img;
  mkdirSync(join(work, 'p'));
  profile = join(work, 'p', 'pi-image.yaml');
  writeFileSync(profile, profileText(['app', 'tool']));
});
test.after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('lock pins each .deb of the closure (from the image own status, sources and keyring); a rerun is byte-identical', async () => {
  const r = await cli(['lock', '--profile', profile, '--cache', cache(), '--fetch', '--json']);
  assert.is(r.code, 0, r.err);
  const text = readFileSync(join(work, 'p', 'pi-image.lock'), 'utf8');
  const lock = decodeLock(text);
  const names = lock.packages.map((p) => `${p.package}=${p.version}`).sort();
  // app's closure minus what the image has (base-thing 1.2 is too old for upgrader, but app only asks >= 1.0).
  assert.ok(names.includes('app=1.0-1') && names.includes('tool=2.0+sec1') && names.includes('libfoo=2.1-0ubuntu1'), names.join(' '));
  assert.not.ok(names.some((n) => n.startsWith('base-thing=') || n.startsWith('mail-b=')), 'installed packages are not carried');
  for (const p of lock.packages) {
    assert.ok(p.url.startsWith(f.server.url.replace(/\/$/, '')) && p.url.endsWith(`/${p.filename}`), p.url);
    assert.is(sha(readFileSync(join(f.archive, p.filename))), p.sha256, `${p.package}: sha256 of the archive's .deb`);
  }
  assert.equal(lock.roles.master.packages.length, lock.packages.length);
  assert.match(text, /Depends: libfoo \(>= 2\.0\)/, 'the relationship fields the bundle Packages needs are in the lock');
  assert.ok(lock.requests.some((q) => q.id === 'package:app' && q.key === 'apt.packages'));
  const again = await cli(['lock', '--profile', profile, '--cache', cache(), '--json']);
  assert.is(again.code, 0, again.err);
  assert.is(JSON.parse(again.out.trim().split('\n').pop()!).changed, false);
  assert.is(readFileSync(join(work, 'p', 'pi-image.lock'), 'utf8'), text);
});

test('build --offline carries the .debs, SHA256SUMS and a Packages index apt accepts in the bundle tar', async () => {
  const lock = decodeLock(readFileSync(join(work, 'p', 'pi-image.lock'), 'utf8'));
  const out = join(work, 'out');
  const res = await build({ nodes: 'all', profile, cacheDir: cache(), secretsDir: join(work, 'secrets'), sourceDateEpoch: 1577836800, jobs: 1, outDir: out, offline: true });
  const img = join(out, 'node1', 'ssd.img');
  const p2 = JSON.parse(sh('sfdisk', ['--json', img])).partitiontable.partitions[1];
  assert.is(p2.type, 'da');
  const raw = join(work, 'p2.tar');
  execFileSync('dd', [`if=${img}`, `of=${raw}`, 'bs=512', `skip=${p2.start}`, `count=${p2.size}`, 'status=none']);
  const x = join(work, 'x');
  mkdirSync(x);
  execFileSync('tar', ['-xf', raw, '-C', x]);
  const debs = join(x, 'pi-image-bundle', 'debs');
  const files = readdirSync(debs).sort();
  assert.is(files.filter((n) => n.endsWith('.deb')).length, lock.packages.length);
  assert.ok(files.includes('Packages') && files.includes('SHA256SUMS'));
  assert.ok(files.includes('alt-b_1%3a0.5_arm64.deb') || !lock.packages.some((p) => p.package === 'alt-b'), 'an epoch is quoted as apt names it');
  sh('sh', ['-c', `cd ${debs} && sha256sum --strict --quiet -c SHA256SUMS`]);
  for (const p of lock.packages) {
    const name = files.find((n) => n.startsWith(`${p.package}_`))!;
    assert.is(sha(readFileSync(join(debs, name))), p.sha256, name);
  }
  const index = readFileSync(join(x, 'pi-image-bundle', 'index.tsv'), 'utf8');
  assert.match(index, /^apt\t[0-9a-f]{64}\t\d+\tpi-image-bundle\/debs\/Packages\tapt Packages$/m);
  assert.ok(res.manifest.nodes.node1!.bundle!.items.some((i) => i.kind === 'deb'));
  // apt reads the bundle's Packages as a flat repository and resolves the same closure against the image status.
  const state = join(work, 'apt');
  mkdirSync(join(state, 'lists', 'partial'), { recursive: true });
  mkdirSync(join(state, 'archives', 'partial'), { recursive: true });
  writeFileSync(join(state, 'status'), statusText([...INSTALLED, { name: 'curl', version: '7.65.3-1ubuntu3' }, { name: 'ca-certificates', version: '20190110' }, { name: 'gnupg', version: '2.2.12-1ubuntu3' }]));
  writeFileSync(join(state, 'sources.list'), `deb [trusted=yes] file:${debs} ./\n`);
  const o = ['-o', `Dir::State::status=${join(state, 'status')}`, '-o', `Dir::State::Lists=${join(state, 'lists')}`, '-o', `Dir::Cache=${state}`, '-o', `Dir::Etc::SourceList=${join(state, 'sources.list')}`, '-o', 'Dir::Etc::SourceParts=-', '-o', 'APT::Architecture=arm64', '-o', 'Debug::NoLocking=1', '-o', 'APT::Sandbox::User=root'];
  execFileSync('apt-get', [...o, '-q', 'update'], { stdio: 'ignore', env: { ...process.env, LC_ALL: 'C' } });
  const sim = execFileSync('apt-get', [...o, '-s', '--no-install-recommends', 'install', 'app', 'tool'], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  const inst = [...sim.matchAll(/^Inst (\S+) (?:\[\S+\] )?\((\S+)/gm)].map((m) => `${m[1]}=${m[2]}`).sort();
  assert.equal(inst, lock.packages.map((p) => `${p.package}=${p.version}`).sort(), 'apt installs exactly the locked .debs from the bundle');
});

test('a changed apt.packages makes the lock stale, naming the entry', async () => {
  writeFileSync(profile, profileText(['app', 'tool', 'uni-pkg']));
  let err: unknown;
  try {
    await build({ nodes: 'all', profile, cacheDir: cache(), secretsDir: join(work, 'secrets'), sourceDateEpoch: 1577836800, jobs: 1, outDir: join(work, 'out2'), offline: true });
  } catch (e) {
    err = e;
  }
  assert.match(String((err as Error)?.message), /pi-image\.lock is stale: entry package:uni-pkg \(apt\.packages\) is not in the lock/);
});

test.run();
