// lib/cli/nodes.ts: build, seed and netboot choose nodes the same way (one set of options, one set of usage
// errors, exit 2), and flash finds a built node's images through out/manifest.json, not by guessing file names.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../../lib/paths.ts';
import { selectedNodes, builtImage, builtNode } from '../../lib/cli/nodes.ts';
import { selectNodes } from '../../lib/cluster/profile.ts';
import { InputError, UsageError } from '../../lib/errors.ts';
import { fakeBytes, tempDir } from '../helpers/lookalike.ts';

const work = tempDir('pi-image-cli-nodes-');
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', pathToFileURL(join(PACKAGE_ROOT, 'node_modules/tsx/dist/esm/index.mjs')).href, join(PACKAGE_ROOT, 'bin/pi-image.ts'), ...args], {
    cwd: work,
    encoding: 'utf8',
    env: { ...process.env, PI_IMAGE_SECRETS: '', PATH: `${process.env.PATH}:/usr/sbin:/sbin` },
  });

test('selectedNodes: names, --all, and the same usage error for both and for neither', () => {
  assert.equal(selectedNodes({ nodes: ['node1', 'node3'] }, 'build'), ['node1', 'node3']);
  assert.is(selectedNodes({ all: true }, 'build'), 'all');
  assert.throws(() => selectedNodes({ all: true, nodes: ['node1'] }, 'build'), (e: unknown) => e instanceof UsageError && /not both/.test(e.message));
  assert.throws(() => selectedNodes({}, 'netboot'), (e: unknown) => e instanceof UsageError && /name the nodes to netboot \(e\.g\. node1\), or pass --all/.test(e.message));
});

test('selectNodes (cluster/profile.ts): --all is the profile order; an unknown name lists the nodes there', () => {
  const p = { nodes: [{ name: 'a' }, { name: 'b' }] } as Parameters<typeof selectNodes>[0];
  assert.equal(selectNodes(p, 'all', 'profile x.yaml'), ['a', 'b']);
  assert.equal(selectNodes(p, ['b'], 'profile x.yaml'), ['b']);
  try {
    selectNodes(p, ['c'], 'profile x.yaml');
    assert.unreachable();
  } catch (e) {
    assert.instance(e, InputError);
    assert.match((e as Error).message, /no node "c" in profile x\.yaml/);
    assert.match((e as InputError).hint ?? '', /a, b/);
  }
});

test('build, seed and netboot give the same usage line and exit 2 for both and for neither', () => {
  for (const cmd of [['build'], ['seed', '--out', 'x'], ['netboot', '--image', 'x.img', '--server', '10.0.0.1', '--tftp-root', 't', '--nfs-root', 'n']]) {
    const both = cli([...cmd, 'node1', '--all']);
    assert.is(both.status, 2, `${cmd[0]}: ${both.stderr}`);
    assert.match(both.stderr, /pi-image: name nodes or pass --all, not both/);
    const none = cli(cmd);
    assert.is(none.status, 2, `${cmd[0]}: ${none.stderr}`);
    assert.match(none.stderr, /pi-image: name the nodes to .*\(e\.g\. node1\), or pass --all/);
  }
});

test('flash <node> writes the images out/manifest.json names, with their block maps', async () => {
  // A build output whose files are not at out/<node>/sd.img: only the manifest says where they are.
  const out = join(work, 'out');
  mkdirSync(join(out, 'n1'), { recursive: true });
  const img = join(out, 'n1', 'boot-card.img');
  const data = Buffer.concat([fakeBytes('sd', 1 << 20), Buffer.alloc(3 << 20), fakeBytes('tail', 4096)]);
  writeFileSync(img, data);
  execFileSync('bmaptool', ['create', '-o', `${img}.map`, img], { stdio: 'ignore' });
  const file = (f: string) => ({ file: f, size: readFileSync(join(out, f)).length, sha256: createHash('sha256').update(readFileSync(join(out, f))).digest('hex') });
  const entry = { ...file('n1/boot-card.img'), bmap: file('n1/boot-card.img.map'), diskId: '0x00000001', partUuids: ['00000001-01'], mappedBytes: 0 };
  writeFileSync(join(out, 'manifest.json'), JSON.stringify({ manifestVersion: 1, nodes: { node1: { role: 'master', instanceId: 'i', sd: entry, ssd: entry, rootPartUuid: 'x', cmdline: '' } } }));
  assert.equal(builtImage(await builtNode(out, 'node1'), 'node1', 'sd'), { image: img, bmap: `${img}.map` });
  const target = join(work, 'card.img');
  const r = cli(['flash', 'node1', '--sd', target, '--yes', '--out', out, '--json']);
  assert.is(r.status, 0, r.stderr);
  assert.ok(readFileSync(target).equals(data), 'the target holds the image the manifest names');
  const flashed = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'flashed');
  assert.is(flashed.bmap.source, 'file', `the manifest's block map was used: ${JSON.stringify(flashed.bmap)}`);
  const missing = cli(['flash', 'node2', '--sd', target, '--yes', '--out', out]);
  assert.is(missing.status, 1);
  assert.match(missing.stderr, /node2: neither an image file nor a node in .*manifest\.json \(built there: node1\)/);
  const typo = cli(['flash', 'missing.img', target, '--yes', '--out', out]);
  assert.is(typo.status, 1, 'a missing image with a target is an input error, not a usage error');
  assert.match(typo.stderr, /missing\.img: neither an image file nor a node/);
});

test.run();
