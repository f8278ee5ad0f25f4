// The trust chain on a real archive: Debian's mirror (the one in this machine's apt sources), InRelease checked with
// Debian's keyring (/usr/share/keyrings/debian-archive-keyring.gpg: a binary keyring of several RSA-4096 and
// Ed25519 keys, signatures by subkeys), Packages.xz of bookworm, bookworm-updates and bookworm-security checked
// against it, and containerd + runc resolved for this machine's architecture minus what its own dpkg status holds,
// every .deb downloaded and checked; the closure equals `apt-get install --simulate` on the same sources, status
// and keyring. Skipped, saying why, when the mirror cannot be reached.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { resolveAptPackages } from '../../lib/lock/apt/index.ts';
import { parseDeb822Sources, distUrl } from '../../lib/lock/apt/sources.ts';
import { Ext4Fs } from '../../lib/image/ext4/index.ts';
import { FileIO } from '../../lib/image/io.ts';
import { fetchText } from '../../lib/source/download.ts';
import { aptSimulate, makeExt4, sh, tmp } from '../helpers/apt-repo.ts';

const SOURCES = '/etc/apt/sources.list.d/debian.sources';
const KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

test('containerd + runc from the real Debian archive, trusted through the image\'s Debian keyring', async () => {
  if (!existsSync(SOURCES) || !existsSync(KEYRING)) {
    console.log(`  skipped: this machine has no ${SOURCES} or ${KEYRING}`);
    return;
  }
  const text = readFileSync(SOURCES, 'utf8');
  const sources = parseDeb822Sources(text, SOURCES);
  try {
    await fetchText(distUrl(sources[0], 'InRelease'), { retries: 0, signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    console.log(`  skipped: the Debian mirror cannot be reached (${(e as Error).message})`);
    return;
  }
  const dir = tmp();
  try {
    const arch = sh('dpkg', ['--print-architecture']).trim();
    const status = readFileSync('/var/lib/dpkg/status');
    const img = makeExt4(dir, { 'var/lib/dpkg/status': status, 'etc/apt/sources.list.d/debian.sources': text, [KEYRING.slice(1)]: readFileSync(KEYRING) }, 64);
    const cacheDir = join(dir, 'cache');
    const t0 = Date.now();
    const entries = await resolveAptPackages({ root: Ext4Fs.open(FileIO.open(img)), imageName: 'debian.img', roles: { worker: ['containerd', 'runc'] }, cacheDir });
    console.log(`  resolved ${entries.length} .debs (${(entries.reduce((s, e) => s + e.size, 0) / 2 ** 20).toFixed(1)} MiB) in ${Date.now() - t0} ms: ${entries.map((e) => `${e.package} ${e.version}`).join(', ')}`);
    const names = entries.map((e) => e.package);
    assert.ok(names.includes('containerd') && names.includes('runc'), names.join(' '));
    for (const e of entries) {
      assert.ok(e.architecture === arch || e.architecture === 'all');
      assert.match(e.url, /^http:\/\/deb\.debian\.org\/debian(-security)?\/pool\//);
    }
    assert.is(readdirSync(join(cacheDir, 'downloads')).filter((f) => f.endsWith('.deb')).length, entries.length);
    const list = sources.map((s) => `deb ${s.uri} ${s.suite} ${s.components.join(' ')}`).join('\n') + '\n';
    const apt = await aptSimulate({ dir: join(dir, 'sim'), sourcesList: list, status: status.toString('utf8'), keyring: readFileSync(KEYRING), arch, packages: ['containerd', 'runc'] });
    assert.equal(entries.map((e) => [e.package, e.version]), apt);
  } finally {
    sh('rm', ['-rf', dir]);
  }
});

test.run();
