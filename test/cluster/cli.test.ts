// `pi-image init` and `pi-image seed` end to end through the real CLI: the starter profile loads, seeds land
// with the right modes, secrets go to the state directory beside the profile and never to stdout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT, parseProfile } from '../../lib/cluster/profile.ts';
import { starterProfile, STARTER_DEFAULTS } from '../../lib/cluster/starter.ts';
import { tempDir } from '../helpers/cluster.ts';

const t = tempDir('pi-image-cli-');
process.on('exit', t.cleanup);
const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', pathToFileURL(join(PACKAGE_ROOT, 'node_modules/tsx/dist/esm/index.mjs')).href, join(PACKAGE_ROOT, 'bin/pi-image.ts'), ...args], {
    cwd: t.dir,
    encoding: 'utf8',
    env: { ...process.env, ...env, PI_IMAGE_SECRETS: '' },
  });

test('starter profiles for both releases load', () => {
  for (const release of ['eoan', 'noble'] as const) {
    for (const nodes of [1, 3, 4]) {
      const p = parseProfile(starterProfile({ ...STARTER_DEFAULTS, release, nodes }));
      assert.is(p.nodes.length, nodes);
    }
  }
});

test('init writes a profile from flags; seed --all writes every node, user-data 0600, no secret on stdout', () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq1XqfV0ClSaFQ7x6MjRQz3Hh3Gmv0T6ZKPR0AhX9yE me@laptop';
  const r = cli(['init', 'cl', '--name', 'lab', '--nodes', '3', '--address', '192.168.7.21/24', '--gateway', '192.168.7.1', '--ssh-key', key]);
  assert.is(r.status, 0, r.stderr);
  const profile = join(t.dir, 'cl', 'pi-image.yaml');
  assert.match(readFileSync(profile, 'utf8'), /192\.168\.7\.23\/24/);
  assert.is(cli(['init', 'cl']).status, 1); // no overwrite without --force
  const s = cli(['seed', '--all', '--profile', profile, '--out', 'seeds', '--json']);
  assert.is(s.status, 0, s.stderr);
  const lines = s.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const result = lines.at(-1);
  assert.is(result.event, 'result');
  assert.equal(result.seeds.map((x: { node: string }) => x.node), ['node1', 'node2', 'node3']);
  const state = join(t.dir, 'cl', '.pi-image-state', 'lab');
  assert.is(statSync(state).mode & 0o777, 0o700);
  const token = readFileSync(join(state, 'bootstrap-token'), 'utf8').trim();
  assert.not.ok(s.stdout.includes(token) || s.stderr.includes(token));
  for (const n of ['node1', 'node2', 'node3']) {
    const dir = join(t.dir, 'seeds', n);
    assert.equal(readdirSync(dir).sort(), ['meta-data', 'network-config', 'user-data']);
    assert.is(statSync(join(dir, 'user-data')).mode & 0o777, 0o600);
    assert.ok(readFileSync(join(dir, 'user-data'), 'utf8').includes(key));
  }
  // Reused secrets: a second run gives identical seeds.
  const before = readFileSync(join(t.dir, 'seeds', 'node2', 'user-data'));
  assert.is(cli(['seed', 'node2', '--profile', profile, '--out', 'seeds']).status, 0);
  assert.ok(readFileSync(join(t.dir, 'seeds', 'node2', 'user-data')).equals(before));
});

test('seed: usage errors exit 2 (a bad init flag too), unknown nodes and bad profiles exit 1 naming the problem', () => {
  assert.is(cli(['seed', '--out', 'x']).status, 2);
  const r = cli(['seed', 'nodeX', '--out', 'x', '--secrets', join(t.dir, 'sec')]);
  assert.is(r.status, 1);
  assert.match(r.stderr, /no node "nodeX" in profile .*yarpi4\.yaml\n  nodes there: node1, node2, node3, node4/);
  const bad = cli(['init', 'bad', '--address', '10.0.0.300/24']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /--address 10\.0\.0\.300\/24/);
});

test.run();
