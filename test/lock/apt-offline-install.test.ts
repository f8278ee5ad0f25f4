// First boot's offline install (cloud-init/offline-apt.sh) run for real: packages resolved from a signed archive on
// 127.0.0.1 are laid out as the bundle's repository (writeBundleRepo), then `offline_apt_install` installs them with
// apt-get --no-download into a private dpkg root, in a network namespace with no network at all (`unshare -n`);
// a damaged .deb stops it before apt runs. The archive is built for this machine's own architecture so the real
// dpkg installs it. Needs root (dpkg --root, unshare): skipped with the reason otherwise.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveAptPackages, writeBundleRepo, type AptLockEntry } from '../../lib/lock/apt/index.ts';
import { parseDpkgStatus } from '../../lib/lock/apt/status.ts';
import { Ext4Fs } from '../../lib/image/ext4/index.ts';
import { FileIO } from '../../lib/image/io.ts';
import { PACKAGE_ROOT } from '../../lib/paths.ts';
import { makeKey, makeArchive, serveDir, statusText, makeExt4, tmp, sh, stopAgent, ENV, type StaticServer, type TestKey } from '../helpers/apt-repo.ts';

const root = process.getuid?.() === 0;
const arch = sh('dpkg', ['--print-architecture']).trim();
let dir: string;
let key: TestKey;
let server: StaticServer;
let entries: AptLockEntry[];
const installed = [{ name: 'dpkg', version: '1.21.0', arch }, { name: 'have-it', version: '2.0', arch }];

test.before(async () => {
  if (!root) return;
  dir = tmp();
  key = makeKey(dir, 'archive');
  makeArchive(join(dir, 'archive'), [{
    suite: 'stable', arch, components: { main: [
      { name: 'svc', version: '1:1.2-3', arch, preDepends: 'svc-base', depends: 'have-it (>= 1.0), libsvc (>= 1.2) | libsvc-old' },
      { name: 'svc-base', version: '1.0', arch: 'all' },
      { name: 'libsvc', version: '1.2~beta1', arch },
      { name: 'libsvc', version: '1.2.0', arch },
      { name: 'have-it', version: '3.0', arch },
    ] },
  }], key);
  server = await serveDir(join(dir, 'archive'));
  const img = makeExt4(join(dir, 'img'), {
    'var/lib/dpkg/status': statusText(installed),
    'etc/apt/sources.list': 'deb http://deb.example.invalid/debian stable main\n',
    'etc/apt/trusted.gpg.d/archive.gpg': key.binary,
  });
  entries = await resolveAptPackages({ root: Ext4Fs.open(FileIO.open(img)), roles: { worker: ['svc'] }, codename: 'stable', mirror: server.url, cacheDir: join(dir, 'cache') });
});
test.after(async () => {
  if (!root) return;
  await server.close();
  stopAgent(key);
  sh('rm', ['-rf', dir]);
});

/** A private dpkg root holding the base image's status, and apt options that use it. */
function dpkgRoot(name: string): { path: string; opts: string } {
  const r = join(dir, name);
  for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers', 'state', 'cache', 'log']) mkdirSync(join(r, d), { recursive: true });
  writeFileSync(join(r, 'var/lib/dpkg/status'), statusText(installed).replace(/^Status:/gm, 'Maintainer: t <t@test.invalid>\nStatus:'));
  const opts = [`Dir::State=${r}/state`, `Dir::State::status=${r}/var/lib/dpkg/status`, `Dir::Cache=${r}/cache`, `Dir::Log=${r}/log`, 'Debug::NoLocking=1',
    `DPkg::Options::=--root=${r}`, 'DPkg::Use-Pty=0', 'DPkg::Pre-Install-Pkgs::=', 'DPkg::Post-Invoke::=', 'DPkg::Pre-Invoke::=', `Dir::Etc::Trusted=${r}/none`, `Dir::Etc::TrustedParts=${r}/none`]
    .map((o) => `-o ${o}`).join(' ');
  return { path: r, opts };
}

async function offlineInstall(bundle: string, opts: string, pkgs: string[]): Promise<{ code: number; out: string }> {
  const script = `. ${join(PACKAGE_ROOT, 'cloud-init/offline-apt.sh')} && offline_apt_install ${bundle} ${pkgs.join(' ')}`;
  try {
    const r = await promisify(execFile)('unshare', ['-n', 'sh', '-c', script], { env: { ...ENV, OFFLINE_APT_OPTS: opts }, maxBuffer: 16 << 20 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout + x.stderr };
  }
}

test('the bundle repository installs with apt-get --no-download and no network', async () => {
  if (!root) {
    console.log('  skipped: needs root (dpkg --root and unshare -n)');
    return;
  }
  assert.equal(entries.map((e) => `${e.package} ${e.version}`), ['libsvc 1.2.0', 'svc 1:1.2-3', 'svc-base 1.0']);
  const bundle = join(dir, 'bundle');
  await writeBundleRepo(bundle, entries, { cacheDir: join(dir, 'cache') });
  assert.ok(existsSync(join(bundle, 'svc_1%3a1.2-3_' + arch + '.deb')));
  const r = dpkgRoot('root1');
  const res = await offlineInstall(bundle, r.opts, ['svc']);
  assert.is(res.code, 0, res.out);
  const now = parseDpkgStatus(readFileSync(join(r.path, 'var/lib/dpkg/status')));
  assert.equal(now.map((p) => `${p.package} ${p.version}`).sort(), ['dpkg 1.21.0', 'have-it 2.0', 'libsvc 1.2.0', 'svc 1:1.2-3', 'svc-base 1.0']);
  assert.is(readFileSync(join(r.path, 'usr/share/doc/svc/marker'), 'utf8'), 'svc 1:1.2-3\n');
  assert.not.match(res.out, /offline-apt:/);
});

test('a damaged .deb in the bundle stops the install before apt, naming SHA256SUMS', async () => {
  if (!root) {
    console.log('  skipped: needs root (dpkg --root and unshare -n)');
    return;
  }
  const bundle = join(dir, 'bundle-bad');
  await writeBundleRepo(bundle, entries, { cacheDir: join(dir, 'cache') });
  appendFileSync(join(bundle, `libsvc_1.2.0_${arch}.deb`), 'x');
  const r = dpkgRoot('root2');
  const res = await offlineInstall(bundle, r.opts, ['svc']);
  assert.is(res.code, 1);
  assert.match(res.out, new RegExp(`offline-apt: ${bundle}: a \\.deb does not match SHA256SUMS \\(damaged bundle\\); nothing installed`));
  assert.equal(parseDpkgStatus(readFileSync(join(r.path, 'var/lib/dpkg/status'))).map((p) => p.package), ['dpkg', 'have-it']);
});

test.run();
