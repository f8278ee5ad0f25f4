// Fault cases of the command line itself: bad flag values, flags given twice, missing arguments. Each is a usage
// error: exit 2, one line naming the flag (plus where to read more), nothing written.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli, assertClean, tempDir, ROOT } from './helpers.ts';

const dir = tempDir('pi-image-faults-usage-');
test.after(() => rmSync(dir, { recursive: true, force: true }));
const img = join(dir, 'none.img');

const cases: Array<[string, string[], (string | RegExp)[]]> = [
  ['build --jobs abc', ['build', 'node1', '--jobs', 'abc', '--image', img, '--out', 'o1'], ['--jobs']],
  ['build --jobs 1.5', ['build', 'node1', '--jobs', '1.5', '--image', img, '--out', 'o2'], ['--jobs', '1.5']],
  ['build --secrets given twice', ['build', 'node1', '--secrets', 'a', '--secrets', 'b', '--image', img, '--out', 'o3'], ['--secrets', 'twice|2 times'].map((s) => new RegExp(s))],
  ['build --out given twice', ['build', 'node1', '--out', 'a', '--out', 'b', '--image', img], ['--out']],
  ['build with neither nodes nor --all', ['build', '--image', img, '--out', 'o4'], [/--all/]],
  ['build with an unknown flag', ['build', 'node1', '--nodez', '3'], [/nodez/]],
  ['init with an invalid address', ['init', 'i1', '--address', '300.1.1.1/24'], ['--address', '300.1.1.1/24']],
  ['init with an address without prefix', ['init', 'i2', '--address', '10.0.0.5'], ['--address']],
  ['init --nodes abc', ['init', 'i3', '--nodes', 'abc'], ['--nodes']],
  ['netboot --prefix abc', ['netboot', '--all', '--image', img, '--server', '10.0.0.1', '--tftp-root', 't', '--nfs-root', 'n', '--prefix', 'abc'], ['--prefix']],
  ['flash an image without a target', ['flash', join(ROOT, 'package.json')], [/target/]],
  ['images fetch with no source', ['images', 'fetch'], [/argument/]],
  ['no command at all', [], [/command/i]],
];

for (const [name, args, names] of cases) {
  test(`usage: ${name} → exit 2, one line naming it, nothing written`, () => {
    const r = cli(dir, args);
    assertClean(r, { code: 2, names, clean: [dir] });
    for (const d of ['o1', 'o2', 'o3', 'o4', 'a', 'b', 'i1', 'i2', 'i3', 't', 'n', 'out']) assert.not.ok(existsSync(join(dir, d)), `${d} not made`);
  });
}

test('usage: a usage error with --json is one JSON error line on stdout, exit 2', () => {
  const r = cli(dir, ['build', 'node1', '--jobs', 'abc', '--json']);
  assert.is(r.code, 2, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 1, r.stdout);
  const j = JSON.parse(lines[0]);
  assert.is(j.event, 'error');
  assert.is(j.code, 'USAGE');
  assert.match(j.message, /--jobs/);
  assert.is(r.stderr, '');
});

test.run();
