// Reading one Packages index into the resolver's universe (lib/lock/apt/archive.ts readPackagesFile), for every way
// it can arrive: plain (scanned where it lies), .xz through the system's `xz -dc` (scanned behind xz as it writes),
// .xz through the WASM decoder and .gz (the decoded stream written to a temporary file): the same versions, the same
// candidates, virtual packages and details read back by offset. Files made by the real `xz` and `gzip`; a truncated
// .xz is refused naming it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readPackagesFile } from '../../lib/lock/apt/archive.ts';
import { Universe } from '../../lib/lock/apt/universe.ts';
import { sh, tmp } from '../helpers/apt-repo.ts';

const stanza = (name: string, version: string, extra: string[] = [], arch = 'arm64'): string =>
  [`Package: ${name}`, `Version: ${version}`, `Architecture: ${arch}`, ...extra, `Filename: pool/${name}_${version}_${arch}.deb`, 'Size: 1234', `SHA256: ${'ab'.repeat(32)}`, `Description: ${name}`, ' a longer description', ' .', ' over lines'].join('\n');

// Enough stanzas that the file spans many reads of the scanner's buffer and xz is still writing while it is read.
const STANZAS = [
  stanza('app', '1.0', ['Depends: lib (>= 2), virt', 'Multi-Arch: foreign']),
  stanza('app', '1.2', ['Depends: lib (>= 2)']),
  stanza('lib', '2.1', ['Provides: virt (= 2.1), other-virt', 'Multi-Arch: same']),
  stanza('lib', '2.1', [], 'amd64'),
  stanza('doc', '1:0.9', [], 'all'),
  ...Array.from({ length: 30000 }, (_, i) => stanza(`filler-${i}`, `${i}.0-1`, i % 7 === 0 ? [`Provides: filler-virt-${i % 100}`] : [])),
];
const TEXT = STANZAS.join('\n\n') + '\n';

function summary(u: Universe) {
  const app = u.candidate('app')!;
  const doc = u.candidate('doc')!;
  return {
    size: u.size,
    app: [app.version, app.multiArch, u.details(app).rel.depends, u.details(app).filename],
    appVersions: u.versions('app').map((p) => p.version),
    lib: u.versions('lib').map((p) => [p.version, p.architecture, p.multiArch]),
    virt: u.providersOf('virt').map((x) => [x.pv.package, x.provide.version]),
    doc: [doc.version, doc.architecture],
    filler: [u.details(u.candidate('filler-29999')!).filename, u.providersOf('filler-virt-7').length],
  };
}

test('plain, system xz, WASM xz and gzip Packages give the same universe, read back by offset', async () => {
  const dir = tmp();
  try {
    const plain = join(dir, 'Packages');
    writeFileSync(plain, TEXT);
    sh('xz', ['-k', '-1', plain]);
    sh('gzip', ['-k', plain]);
    assert.ok(statSync(plain).size > 4 << 20, 'several reads of the 1 MiB buffer');
    const read = async (path: string, env?: string) => {
      const before = process.env.PI_IMAGE_XZ;
      if (env) process.env.PI_IMAGE_XZ = env;
      const u = new Universe('arm64');
      try {
        await readPackagesFile(path, { uri: 'http://x/', suite: 'eoan' }, u, path);
        return summary(u);
      } finally {
        u.close();
        if (env) {
          if (before === undefined) delete process.env.PI_IMAGE_XZ;
          else process.env.PI_IMAGE_XZ = before;
        }
      }
    };
    const want = await read(plain);
    assert.equal(want.app, ['1.2', undefined, 'lib (>= 2)', 'pool/app_1.2_arm64.deb']);
    assert.equal(want.appVersions, ['1.0', '1.2']);
    assert.equal(want.lib, [['2.1', 'arm64', 'same']]);
    assert.equal(want.virt, [['lib', '2.1']]);
    assert.equal(want.doc, ['1:0.9', 'all']);
    assert.equal(want.filler, ['pool/filler-29999_29999.0-1_arm64.deb', 43]);
    assert.is(want.size, 5 - 1 + 30000);
    assert.equal(await read(`${plain}.xz`, 'xz'), want, 'system xz');
    assert.equal(await read(`${plain}.xz`, 'wasm'), want, 'WASM xz');
    assert.equal(await read(`${plain}.gz`), want, 'gzip');
    // A truncated .xz: xz's own complaint, naming the file, whatever the scanner saw of it first.
    const cut = join(dir, 'cut.xz');
    writeFileSync(cut, readFileSync(`${plain}.xz`));
    truncateSync(cut, statSync(cut).size - 100);
    const u = new Universe('arm64');
    try {
      await readPackagesFile(cut, { uri: 'http://x/', suite: 'eoan' }, u, 'http://x/Packages.xz');
      assert.unreachable('a truncated .xz was read');
    } catch (e) {
      assert.match((e as Error).message, /^http:\/\/x\/Packages\.xz: xz data is damaged or truncated/);
    } finally {
      u.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
