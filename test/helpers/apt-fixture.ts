// The shared fixture of the apt resolver tests: one signed archive with eoan-like suites on 127.0.0.1 and an ext4
// base image whose dpkg status, sources and keyrings point at it (through the profile-style mirror override).
import { join } from 'node:path';
import { readFileSync, rmSync } from 'node:fs';
import { FileIO } from '../../lib/image/io.ts';
import { Ext4Fs } from '../../lib/image/ext4/index.ts';
import { stopAgent, makeKey, makeArchive, serveDir, statusText, makeExt4, tmp, type TestKey, type StaticServer, type SuiteSpec } from './apt-repo.ts';

export const SUITES: SuiteSpec[] = [
  {
    suite: 'eoan',
    components: {
      main: [
        { name: 'app', version: '1.0-1', preDepends: 'predep', depends: 'libfoo (>= 2.0), alt-a (>= 5) | alt-b, www-browser, base-thing (>= 1.0), mail-a | mail-b, libvirt-api (>= 3), perlish:any', recommends: 'extra' },
        { name: 'predep', version: '0.9', arch: 'all' },
        { name: 'libfoo', version: '1.0-1', depends: 'libc6 (>= 2.28)' },
        { name: 'alt-a', version: '4.0' },
        { name: 'alt-b', version: '1:0.5', depends: 'alt-b-data (= 1:0.5)' },
        { name: 'alt-b-data', version: '1:0.5', arch: 'all' },
        { name: 'lynx', version: '2.9.0~dev.3-1', provides: 'www-browser' },
        { name: 'base-thing', version: '1.5' },
        { name: 'mail-a', version: '1.0' },
        { name: 'oldimpl', version: '1.0', provides: 'libvirt-api' },
        { name: 'libvimpl', version: '3.1', provides: 'libvirt-api (= 3.1)' },
        { name: 'perlish', version: '5.30', multiArch: 'allowed' },
        { name: 'extra', version: '1.0' },
        { name: 'tool', version: '2.0' },
        { name: 'needs-new', version: '1.0' },
        { name: 'broken', version: '1.0', depends: 'needs-new (>= 2)' },
        { name: 'top', version: '1.0', depends: 'broken (>= 1)' },
        { name: 'upgrader', version: '1.0', depends: 'base-thing (>= 1.4)' },
      ],
      universe: [{ name: 'uni-pkg', version: '1.0', depends: 'libfoo' }],
    },
  },
  { suite: 'eoan-updates', components: { main: [{ name: 'libfoo', version: '2.1-0ubuntu1', depends: 'libc6 (>= 2.28)' }], universe: [] } },
  { suite: 'eoan-security', components: { main: [{ name: 'tool', version: '2.0+sec1' }], universe: [] } },
  { suite: 'eoan-backports', components: { main: [{ name: 'tool', version: '9.0' }], universe: [] } },
];

export const INSTALLED = [
  { name: 'dpkg', version: '1.19.7ubuntu2' },
  { name: 'libc6', version: '2.30-0ubuntu2' },
  { name: 'base-thing', version: '1.2' },
  { name: 'mail-b', version: '3.0' },
  { name: 'removed-one', version: '1.0', status: 'deinstall ok config-files' },
];

/** The image's sources: the stock archive (which the mirror replaces) in sources.list, security in a .sources. */
export const SOURCES_LIST = [
  'deb http://ports.invalid/ubuntu-ports eoan main universe',
  'deb http://ports.invalid/ubuntu-ports eoan-updates main universe',
  'deb http://ports.invalid/ubuntu-ports eoan-backports main universe',
  'deb-src http://ports.invalid/ubuntu-ports eoan main',
  '',
].join('\n');
export const SECURITY_SOURCES = ['Types: deb', 'URIs: http://ports.invalid/ubuntu-ports', 'Suites: eoan-security', 'Components: main universe', 'Signed-By: /usr/share/keyrings/test-archive.gpg', ''].join('\n');

export interface AptFixture {
  dir: string;
  archive: string;
  key: TestKey;
  other: TestKey;
  server: StaticServer;
  imagePath: string;
  root: Ext4Fs;
  status: string;
  close(): Promise<void>;
}

let shared: Promise<AptFixture> | undefined;

/** Made once per test process. */
export function aptFixture(): Promise<AptFixture> {
  shared ??= (async () => {
    const dir = tmp();
    const key = makeKey(dir, 'archive', 'rsa2048');
    const other = makeKey(dir, 'unrelated', 'ed25519');
    const archive = join(dir, 'archive');
    makeArchive(archive, SUITES, key);
    // Backports as Ubuntu publishes them: NotAutomatic, so apt never takes a candidate from there by itself.
    const bp = join(archive, 'dists/eoan-backports');
    const rel = readFileSync(join(bp, 'Release'), 'utf8').replace(/^Date:/m, 'NotAutomatic: yes\nButAutomaticUpgrades: yes\nDate:');
    (await import('node:fs')).writeFileSync(join(bp, 'Release'), rel);
    (await import('../helpers/apt-repo.ts')).sign(bp, key);
    const server = await serveDir(archive);
    const status = statusText(INSTALLED);
    const imagePath = makeExt4(join(dir, 'image'), {
      'var/lib/dpkg/status': status,
      'var/lib/dpkg/arch': 'arm64\n',
      'etc/apt/sources.list': SOURCES_LIST,
      'etc/apt/sources.list.d/security.sources': SECURITY_SOURCES,
      // One binary keyring file with two keys (an unrelated one first), as Ubuntu's trusted.gpg.d files are.
      'etc/apt/trusted.gpg.d/test.gpg': Buffer.concat([other.binary, key.binary]),
      'usr/share/keyrings/test-archive.gpg': key.binary,
    });
    const root = Ext4Fs.open(FileIO.open(imagePath));
    // Shared by every file of the test process, so no file may close it for the others: its server does not keep
    // the process alive (apt-lock.test.ts run alone otherwise waited for ever after its last test), and the gpg
    // agents and files go when the process exits.
    server.unref();
    process.once('exit', () => {
      stopAgent(key);
      stopAgent(other);
      rmSync(dir, { recursive: true, force: true });
    });
    return {
      dir, archive, key, other, server, imagePath, root, status,
      close: async () => {
        await server.close();
        stopAgent(key);
        stopAgent(other);
        (await import('node:fs')).rmSync(dir, { recursive: true, force: true });
      },
    };
  })();
  return shared;
}
