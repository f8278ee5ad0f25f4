// The pure codecs of the apt resolver: deb822 stanzas (continuations, comments, CRLF, any chunking), dependency
// and Provides fields, dpkg status, sources (one-line and deb822), Release, the bundle's Packages writer and the
// per-role package list of a profile.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { parseStanzas, StanzaParser, writeStanzas, type Stanza } from '../../lib/lock/apt/deb822.ts';
import { PackagesScanner } from '../../lib/lock/apt/packages-scan.ts';
import { parseDepends, parseProvides, provideMeets } from '../../lib/lock/apt/depends.ts';
import { parseDpkgStatus, nativeArchFromStatus } from '../../lib/lock/apt/status.ts';
import { parseSourcesList, parseDeb822Sources, distUrl, poolUrl } from '../../lib/lock/apt/sources.ts';
import { parseRelease, checkRelease } from '../../lib/lock/apt/release.ts';
import { bundlePackagesFile, bundleSha256Sums, bundleDebName } from '../../lib/lock/apt/bundle-repo.ts';
import { aptPackagesFor, aptPackagesByRole, aptInputsFromProfile } from '../../lib/lock/apt/packages-for.ts';
import { parseProfile, BUILTIN_PROFILE } from '../../lib/cluster/profile.ts';
import { InputError, VerifyError } from '../../lib/errors.ts';
import type { AptLockEntry } from '../../lib/lock/apt/types.ts';

const TEXT = [
  '# a comment',
  'Package: foo',
  'Version: 1.0',
  'Description: short',
  ' long line one',
  ' .',
  ' line three',
  'depends: bar (>= 1)',
  '',
  '',
  'Package: baz',
  'Version: 2',
  '',
].join('\n');

test('deb822: fields lower-cased, continuations joined, blank runs separate stanzas', () => {
  const st = parseStanzas(TEXT);
  assert.is(st.length, 2);
  assert.is(st[0].get('package'), 'foo');
  assert.is(st[0].get('depends'), 'bar (>= 1)');
  assert.is(st[0].get('description'), 'short\nlong line one\n.\nline three');
  assert.is(st[1].get('version'), '2');
  assert.equal(parseStanzas(TEXT.replace(/\n/g, '\r\n')).map((s) => [...s]), st.map((s) => [...s]));
});

test('deb822: the streaming parser gives the same stanzas however the bytes are cut, keeping only asked fields', () => {
  const bytes = Buffer.from(TEXT.replace('short', 'shört ünïcode'));
  for (const cut of [1, 2, 3, 7, 64]) {
    const out: Stanza[] = [];
    const p = new StanzaParser((s) => out.push(s), { fields: ['Package', 'Depends'] });
    for (let i = 0; i < bytes.length; i += cut) p.push(bytes.subarray(i, i + cut));
    p.end();
    assert.equal(out.map((s) => [...s]), [[['package', 'foo'], ['depends', 'bar (>= 1)']], [['package', 'baz']]], `cut ${cut}`);
  }
  // The byte range given with each stanza holds exactly it, however the input was cut (read back by offset later).
  const text = Buffer.from('Package: a\nX: 1\n\n\nPackage: bé\nDepends: c\r\n continued\n\nPackage: last');
  for (const cut of [1, 2, 5, 100]) {
    const got: string[] = [];
    const p = new StanzaParser((s, _line, start, end) => got.push(`${s.get('package')}=${parseStanzas(text.subarray(start, end).toString())[0].get('package')}`), { fields: ['package'] });
    for (let i = 0; i < text.length; i += cut) p.push(text.subarray(i, i + cut));
    p.end();
    assert.equal(got, ['a=a', 'bé=bé', 'last=last'], `cut ${cut}`);
  }
  assert.throws(() => parseStanzas('Package foo\n', 'X'), (e: unknown) => e instanceof InputError && /X line 1/.test((e as Error).message));
  assert.throws(() => parseStanzas(' orphan\n', 'X'), /continuation line/);
});

test('Packages scanner: the same stanzas, fields and byte ranges as the deb822 parser, however the bytes are cut', () => {
  const text = Buffer.from(
    [
      '# a comment',
      'package: low',
      'VERSION: 1.0',
      'Architecture: arm64',
      'Description: shört ünïcode',
      ' Provides: not-a-field',
      'Provides: virt-a (= 1.0), virt-b,',
      ' virt-c:any',
      'Multi-Arch: foreign',
      '',
      ' \t',
      'Package: other-arch',
      'Version: 2',
      'Architecture: amd64',
      '',
      'Package: indep',
      'Version: 1:3~b1',
      'Architecture:   all  ',
      'Packages-List: not Package',
      'Provides: dup',
      'Provides: last-wins',
      '',
      'Package: noarch',
      'Version: 4',
    ].join('\r\n'),
  );
  const want = parseStanzas(text.toString()).map((st) => ({
    package: st.get('package'),
    version: st.get('version'),
    arch: st.get('architecture') === 'arm64' ? 0 : st.get('architecture') === 'all' ? 1 : 2,
    multiArch: st.get('multi-arch'),
    provides: parseProvides(st.get('provides') ?? '').map((p) => p.name),
  }));
  assert.equal(want.map((w) => w.provides), [['virt-a', 'virt-b', 'virt-c'], [], ['last-wins'], []]);
  for (const cut of [1, 2, 3, 7, 64, 1000]) {
    const got: Array<(typeof want)[number] & { range: string }> = [];
    const p = new PackagesScanner('arm64', (s) => {
      const str = (a: number, b: number) => (a === b ? undefined : s.bytes.toString('utf8', a, b));
      const provides = [];
      for (let i = 0; i < s.provides.length; i += 2) provides.push(str(s.provides[i], s.provides[i + 1])!);
      got.push({ package: str(s.pkg, s.pkgEnd), version: str(s.ver, s.verEnd), arch: s.arch, multiArch: s.multiArch, provides, range: text.subarray(s.start, s.end).toString() });
    });
    for (let i = 0; i < text.length; i += cut) p.push(text.subarray(i, i + cut));
    p.end();
    assert.equal(got.map(({ range: _, ...g }) => g), want, `cut ${cut}`);
    // Each byte range reads back as exactly its stanza.
    assert.equal(got.map((g) => parseStanzas(g.range)[0].get('package')), want.map((w) => w.package), `cut ${cut}`);
    assert.ok(got[0].range.startsWith('package: low') && got[0].range.endsWith('Multi-Arch: foreign\r\n'), got[0].range);
  }
  assert.throws(() => new PackagesScanner('arm64', () => {}, 'P').push(Buffer.from('Package: a\nnot a field\n')), (e: unknown) => e instanceof InputError && /P line 2: "not a field" is not a "Field: value" line/.test((e as Error).message));
  assert.throws(() => new PackagesScanner('arm64', () => {}, 'P').push(Buffer.from(' orphan\n')), /P line 1: a continuation line/);
});

test('deb822 writer round-trips through the parser', () => {
  const text = writeStanzas([[['Package', 'a'], ['Description', 'x\nmore\n\nend'], ['Empty', undefined]], [['Package', 'b']]]);
  assert.is(text, 'Package: a\nDescription: x\n more\n .\n end\n\nPackage: b\n');
  assert.is(parseStanzas(text)[0].get('description'), 'x\nmore\n.\nend');
});

test('Depends: alternatives, version ops, arch qualifiers, deprecated < and >', () => {
  const g = parseDepends('libc6 (>= 2.28), mail-a | mail-b (<< 3:1.0~), perl:any, python3:native (>=3.7), old (< 2), new (> 1), x [amd64] <!nocheck>');
  assert.equal(g, [
    [{ name: 'libc6', op: '>=', version: '2.28' }],
    [{ name: 'mail-a' }, { name: 'mail-b', op: '<<', version: '3:1.0~' }],
    [{ name: 'perl', arch: 'any' }],
    [{ name: 'python3', arch: 'native', op: '>=', version: '3.7' }],
    [{ name: 'old', op: '<=', version: '2' }],
    [{ name: 'new', op: '>=', version: '1' }],
    [{ name: 'x' }],
  ]);
  assert.throws(() => parseDepends('good, Bad Name', 'foo 1.0: Depends'), (e: unknown) => e instanceof InputError && e.message.includes('foo 1.0: Depends: "Bad Name"'));
  assert.throws(() => parseDepends('a (>= x.1)'), /upstream version must start with a digit/);
});

test('Provides: versioned ones meet constraints, unversioned only unversioned dependencies', () => {
  const [v, u] = parseProvides('api (= 3.1), api');
  assert.equal(v, { name: 'api', version: '3.1' });
  assert.ok(provideMeets({ name: 'api', op: '>=', version: '3' }, v));
  assert.not.ok(provideMeets({ name: 'api', op: '>=', version: '4' }, v));
  assert.not.ok(provideMeets({ name: 'api', op: '>=', version: '1' }, u));
  assert.ok(provideMeets({ name: 'api' }, u));
  assert.throws(() => parseProvides('api (>= 1)'), /must use "="/);
});

test('dpkg status: only "install ok installed" counts; the architecture is dpkg\'s', () => {
  const status = [
    'Package: dpkg\nStatus: install ok installed\nArchitecture: arm64\nVersion: 1.19.7',
    'Package: gone\nStatus: deinstall ok config-files\nArchitecture: arm64\nVersion: 1.0',
    'Package: half\nStatus: install reinstreq half-installed\nArchitecture: arm64\nVersion: 1.0',
    'Package: mta\nStatus: install ok installed\nArchitecture: all\nVersion: 2\nProvides: mail-transport-agent',
  ].join('\n\n');
  const pkgs = parseDpkgStatus(status);
  assert.equal(pkgs.map((p) => p.package), ['dpkg', 'mta']);
  assert.equal(pkgs[1].provides, [{ name: 'mail-transport-agent' }]);
  assert.is(nativeArchFromStatus(pkgs), 'arm64');
  assert.throws(() => parseDpkgStatus('Package: x\nStatus: install ok installed\n', 'img:/var/lib/dpkg/status'), /img:\/var\/lib\/dpkg\/status line 1: x is installed but has no Version/);
});

test('sources: one-line with options, deb-src skipped; deb822 with several suites, inline keys, Enabled: no', () => {
  const one = parseSourcesList('deb http://ports.ubuntu.com/ubuntu-ports eoan main restricted # c\ndeb-src http://x eoan main\n\ndeb [arch=arm64 signed-by=/usr/share/keyrings/k.gpg] http://y/ stable/ \n', 'sources.list');
  assert.is(one.length, 2);
  assert.equal(one[0].components, ['main', 'restricted']);
  assert.equal(one[1].signedBy, ['/usr/share/keyrings/k.gpg']);
  assert.equal(one[1].architectures, ['arm64']);
  assert.is(distUrl(one[0], 'InRelease'), 'http://ports.ubuntu.com/ubuntu-ports/dists/eoan/InRelease');
  assert.is(distUrl(one[1], 'InRelease'), 'http://y/stable/InRelease');
  assert.is(poolUrl(one[0], 'pool/main/c/curl/curl.deb'), 'http://ports.ubuntu.com/ubuntu-ports/pool/main/c/curl/curl.deb');
  assert.throws(() => parseSourcesList('deb\n', '/etc/apt/sources.list'), /\/etc\/apt\/sources.list line 1/);
  const d = parseDeb822Sources(
    'Types: deb deb-src\nURIs: http://a/ubuntu\nSuites: noble noble-updates\nComponents: main universe\nSigned-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg\n\n' +
      'Types: deb\nURIs: http://b/\nSuites: x\nComponents: main\nEnabled: no\n\n' +
      'Types: deb\nURIs: http://c/\nSuites: y\nComponents: main\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n -----END PGP PUBLIC KEY BLOCK-----\n',
    'ubuntu.sources',
  );
  assert.equal(d.map((s) => `${s.uri} ${s.suite}`), ['http://a/ubuntu noble', 'http://a/ubuntu noble-updates', 'http://c/ y']);
  assert.equal(d[0].signedBy, ['/usr/share/keyrings/ubuntu-archive-keyring.gpg']);
  assert.is(d[2].inlineKey, '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----');
});

test('Release: SHA256 list required, suite and Valid-Until checked', () => {
  const sha = 'a'.repeat(64);
  const text = `Suite: stable\nCodename: bookworm\nValid-Until: Sat, 01 Jan 2000 00:00:00 UTC\nArchitectures: arm64 all\nComponents: main\nSHA256:\n ${sha} 123 main/binary-arm64/Packages.xz\n`;
  const r = parseRelease(text, 'u');
  assert.equal(r.files.get('main/binary-arm64/Packages.xz'), { sha256: sha, size: 123 });
  assert.equal(r.architectures, ['arm64', 'all']);
  checkRelease(r, 'bookworm', 'u', new Date('1999-12-31'));
  assert.throws(() => checkRelease(r, 'bookworm', 'u', new Date('2001-01-01')), (e: unknown) => e instanceof VerifyError && /expired/.test((e as Error).message));
  assert.throws(() => checkRelease(r, 'trixie', 'u', new Date('1999-12-31')), /is for suite stable \(codename bookworm\), not trixie/);
  assert.throws(() => parseRelease('Suite: x\nMD5Sum:\n 00 1 a\n', 'http://m/InRelease'), (e: unknown) => e instanceof VerifyError && /http:\/\/m\/InRelease: no SHA256/.test((e as Error).message));
});

const entry = (p: Partial<AptLockEntry>): AptLockEntry => ({
  package: 'x', version: '1.0', architecture: 'arm64', filename: 'pool/main/x/x_1.0_arm64.deb', url: 'http://m/pool/main/x/x_1.0_arm64.deb',
  sha256: 'b'.repeat(64), size: 10, suite: 'eoan', roles: ['worker'], control: {}, ...p,
});

test('bundle repository: Packages stanzas apt can read, SHA256SUMS, apt archive-cache names', () => {
  const e = [entry({ package: 'runc', version: '1.0.0~rc8+git20190923.3e425f80-0ubuntu1', control: { Depends: 'libc6 (>= 2.28), libseccomp2 (>= 2.4.1)', 'Multi-Arch': 'foreign' } }), entry({ package: 'tzdata', version: '1:2019c-3', architecture: 'all' })];
  const text = bundlePackagesFile(e);
  const st = parseStanzas(text);
  assert.is(st[0].get('filename'), 'runc_1.0.0~rc8+git20190923.3e425f80-0ubuntu1_arm64.deb');
  assert.is(st[0].get('depends'), 'libc6 (>= 2.28), libseccomp2 (>= 2.4.1)');
  assert.is(st[0].get('multi-arch'), 'foreign');
  assert.is(st[1].get('filename'), 'tzdata_1%3a2019c-3_all.deb');
  assert.is(st[1].get('sha256'), 'b'.repeat(64));
  assert.is(bundleSha256Sums(e).split('\n')[1], `${'b'.repeat(64)}  tzdata_1%3a2019c-3_all.deb`);
  assert.is(bundleDebName({ package: 'a', version: '1_2', architecture: 'x.y', filename: 'a.deb' }), 'a_1%5f2_x%2ey.deb');
  assert.throws(() => bundlePackagesFile([entry({ filename: 'pool/x.tar' })]), /not a \.deb/);
});

test('packages per role follow the profile: runtime, gluster, heketi xfsprogs, apt.packages', () => {
  const p = parseProfile(readFileSync(BUILTIN_PROFILE, 'utf8'), BUILTIN_PROFILE);
  const worker = aptPackagesFor(p, 'worker');
  assert.ok(worker.includes(p.kubernetes.runtime));
  for (const n of ['conntrack', 'socat', 'ebtables', 'ethtool', 'ipset', 'glusterfs-server', 'lvm2', 'xfsprogs']) assert.ok(worker.includes(n), n);
  const roles = aptPackagesByRole(p);
  assert.equal(Object.keys(roles), [...new Set(p.nodes.map((n) => n.role))].sort());
  const bare = { ...p, kubernetes: { ...p.kubernetes, enabled: false }, glusterfs: { ...p.glusterfs, enabled: false }, apt: { ...p.apt, packages: [] } };
  assert.equal(aptPackagesFor(bare, 'worker'), []);
  const extra = { ...bare, apt: { ...p.apt, packages: ['htop', 'curl'] } };
  assert.equal(aptPackagesFor(extra, 'master'), ['curl', 'ca-certificates', 'gnupg', 'htop']);
  // The reference profile is Ubuntu 19.10 (end of life): its mirrors default to old-releases (lib/cluster/profile.ts).
  const inputs = aptInputsFromProfile(p);
  assert.is(inputs.codename, 'eoan');
  assert.is(inputs.mirror, 'http://old-releases.ubuntu.com/ubuntu');
  assert.is(inputs.securityMirror, 'http://old-releases.ubuntu.com/ubuntu');
  assert.equal(inputs.roles, roles);
});

test.run();
