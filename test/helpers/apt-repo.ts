// Test fixtures for the apt resolver, made at test time by the real tools: tiny .debs built with `dpkg-deb
// --build`, an archive laid out as Debian's (dists/<suite>/<comp>/binary-<arch>/Packages.xz, pool/) indexed by
// `apt-ftparchive packages/release`, InRelease clearsigned by a `gpg` key made in a private GNUPGHOME, a static
// HTTP server on 127.0.0.1 (port 0), an ext4 root made with `mkfs.ext4 -d`, and `apt-get --simulate` run
// against the same archive and status file in a private apt state directory.
import { execFileSync, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, statSync, existsSync, readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname, normalize } from 'node:path';

export const ENV = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin`, LC_ALL: 'C' };

export function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): string {
  return execFileSync(cmd, args, { cwd: opts.cwd, env: opts.env ?? ENV, encoding: 'utf8', input: opts.input, maxBuffer: 64 << 20, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function tmp(prefix = 'pi-image-apt-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A signing key in its own GNUPGHOME. */
export interface TestKey {
  home: string;
  fingerprint: string;
  /** `gpg --export` (binary) of the key. */
  binary: Buffer;
  armored: string;
  env: NodeJS.ProcessEnv;
}

export function makeKey(dir: string, name: string, algo = 'rsa3072'): TestKey {
  const home = join(dir, `gnupg-${name}`);
  mkdirSync(home, { mode: 0o700 });
  const env = { ...ENV, GNUPGHOME: home };
  sh('gpg', ['--batch', '--passphrase', '', '--quick-gen-key', `${name} <${name}@test.invalid>`, algo, 'sign', 'never'], { env });
  const fingerprint = /^fpr:+([0-9A-F]{40}):/m.exec(sh('gpg', ['--batch', '--with-colons', '--list-keys'], { env }))![1];
  const binary = execFileSync('gpg', ['--batch', '--export', fingerprint], { env });
  const armored = sh('gpg', ['--batch', '--armor', '--export', fingerprint], { env });
  return { home, fingerprint, binary, armored, env };
}

export interface DebSpec {
  name: string;
  version: string;
  arch?: string;
  depends?: string;
  preDepends?: string;
  provides?: string;
  multiArch?: string;
  recommends?: string;
}

/** Build a tiny .deb into `dir`; returns its path. */
export function makeDeb(dir: string, d: DebSpec): string {
  const root = mkdtempSync(join(tmpdir(), 'pi-image-deb-'));
  try {
    mkdirSync(join(root, 'DEBIAN'));
    mkdirSync(join(root, 'usr/share/doc', d.name), { recursive: true });
    writeFileSync(join(root, 'usr/share/doc', d.name, 'marker'), `${d.name} ${d.version}\n`);
    const fields = [
      `Package: ${d.name}`,
      `Version: ${d.version}`,
      `Architecture: ${d.arch ?? 'arm64'}`,
      'Maintainer: pi-image tests <t@test.invalid>',
      d.multiArch && `Multi-Arch: ${d.multiArch}`,
      d.preDepends && `Pre-Depends: ${d.preDepends}`,
      d.depends && `Depends: ${d.depends}`,
      d.recommends && `Recommends: ${d.recommends}`,
      d.provides && `Provides: ${d.provides}`,
      `Description: test package ${d.name}`,
    ].filter(Boolean);
    writeFileSync(join(root, 'DEBIAN/control'), fields.join('\n') + '\n');
    const out = join(dir, `${d.name}_${d.version.replace(/^\d+:/, '')}_${d.arch ?? 'arm64'}.deb`);
    mkdirSync(dir, { recursive: true });
    sh('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, out]);
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export interface SuiteSpec {
  suite: string;
  codename?: string;
  components: Record<string, DebSpec[]>;
  arch?: string;
}

/**
 * Lay out an archive under `root` (pool/<suite>/<comp>/, dists/<suite>/...), index it with apt-ftparchive and
 * clearsign dists/<suite>/InRelease with `key`.
 */
export function makeArchive(root: string, suites: SuiteSpec[], key: TestKey): void {
  for (const s of suites) {
    const arch = s.arch ?? 'arm64';
    for (const [comp, debs] of Object.entries(s.components)) {
      const pool = join(root, 'pool', s.suite, comp);
      mkdirSync(pool, { recursive: true });
      for (const d of debs) makeDeb(pool, d);
      const bin = join(root, 'dists', s.suite, comp, `binary-${arch}`);
      mkdirSync(bin, { recursive: true });
      const packages = sh('apt-ftparchive', ['packages', `pool/${s.suite}/${comp}`], { cwd: root });
      writeFileSync(join(bin, 'Packages'), packages);
      sh('xz', ['-k', '-f', join(bin, 'Packages')]);
    }
    const dist = join(root, 'dists', s.suite);
    const release = sh(
      'apt-ftparchive',
      [
        '-o', `APT::FTPArchive::Release::Suite=${s.suite}`,
        '-o', `APT::FTPArchive::Release::Codename=${s.codename ?? s.suite}`,
        '-o', `APT::FTPArchive::Release::Architectures=${arch}`,
        '-o', `APT::FTPArchive::Release::Components=${Object.keys(s.components).join(' ')}`,
        'release', '.',
      ],
      { cwd: dist },
    );
    writeFileSync(join(dist, 'Release'), release);
    sign(dist, key);
  }
}

/** Clearsign dist/Release into dist/InRelease. */
export function sign(dist: string, key: TestKey): void {
  rmSync(join(dist, 'InRelease'), { force: true });
  sh('gpg', ['--batch', '--yes', '--digest-algo', 'SHA256', '--local-user', key.fingerprint, '--clearsign', '-o', join(dist, 'InRelease'), join(dist, 'Release')], { env: key.env });
}

/** Stop the gpg-agent a key's GNUPGHOME started. */
export function stopAgent(key: TestKey): void {
  try {
    sh('gpgconf', ['--homedir', key.home, '--kill', 'gpg-agent']);
  } catch {
    /* not running */
  }
}

export interface StaticServer {
  url: string;
  requests: string[];
  close(): Promise<void>;
  /** Lets the test process exit while the server still listens (a fixture shared by the files of one process). */
  unref(): void;
}

/** Serve `root` read-only on 127.0.0.1 (random port). */
export async function serveDir(root: string): Promise<StaticServer> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const file = normalize(join(root, path));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
    unref: () => void server.unref(),
  };
}

/** A dpkg status text for installed packages. */
export function statusText(pkgs: Array<{ name: string; version: string; arch?: string; provides?: string; status?: string }>): string {
  return pkgs
    .map((p) =>
      [
        `Package: ${p.name}`,
        `Status: ${p.status ?? 'install ok installed'}`,
        'Priority: optional',
        `Architecture: ${p.arch ?? 'arm64'}`,
        `Version: ${p.version}`,
        p.provides && `Provides: ${p.provides}`,
        `Description: installed ${p.name}`,
      ]
        .filter(Boolean)
        .join('\n'),
    )
    .join('\n\n') + '\n';
}

/** An ext4 image whose root holds `files` (path -> contents), made with mkfs.ext4 -d. */
export function makeExt4(dir: string, files: Record<string, string | Buffer>, sizeMiB = 16): string {
  const tree = join(dir, 'tree');
  for (const [p, data] of Object.entries(files)) {
    mkdirSync(dirname(join(tree, p)), { recursive: true });
    writeFileSync(join(tree, p), data);
  }
  const img = join(dir, 'root.ext4');
  sh('truncate', ['-s', `${sizeMiB}M`, img]);
  sh('mkfs.ext4', ['-q', '-F', '-d', tree, img]);
  return img;
}

/**
 * What `apt-get install --simulate --no-install-recommends` would install for `pkgs`, in a private apt state
 * (its own lists, cache, status file, sources and keyring): [package, version] pairs, sorted.
 */
export async function aptSimulate(opts: { dir: string; sourcesList: string; status: string; keyring: Buffer; arch: string; packages: string[] }): Promise<Array<[string, string]>> {
  const d = opts.dir;
  for (const sub of ['state/lists/partial', 'cache/archives/partial', 'parts', 'prefs']) mkdirSync(join(d, sub), { recursive: true });
  writeFileSync(join(d, 'sources.list'), opts.sourcesList);
  writeFileSync(join(d, 'status'), opts.status);
  writeFileSync(join(d, 'trusted.gpg'), opts.keyring);
  const o = [
    '-o', `Dir::State=${d}/state`, '-o', `Dir::State::status=${d}/status`, '-o', `Dir::Cache=${d}/cache`,
    '-o', `Dir::Etc::SourceList=${d}/sources.list`, '-o', `Dir::Etc::SourceParts=${d}/parts`,
    '-o', `Dir::Etc::Trusted=${d}/trusted.gpg`, '-o', `Dir::Etc::TrustedParts=${d}/parts`,
    '-o', `Dir::Etc::Preferences=${d}/prefs/none`, '-o', `Dir::Etc::PreferencesParts=${d}/prefs`,
    '-o', `APT::Architecture=${opts.arch}`, '-o', `APT::Architectures::=${opts.arch}`, '-o', 'Debug::NoLocking=1',
    '-o', 'APT::Install-Recommends=false', '-o', 'Acquire::Languages=none',
  ];
  // Asynchronously: the archive's server runs in this process and must answer while apt fetches.
  const run = (args: string[]) => promisify(execFile)('apt-get', args, { env: ENV, maxBuffer: 16 << 20 });
  await run([...o, '-q', 'update']);
  const { stdout: out } = await run([...o, '-s', 'install', ...opts.packages]);
  return out
    .split('\n')
    .map((l) => /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) /.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m): [string, string] => [m[1], m[2]])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String);
}
