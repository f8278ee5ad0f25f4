// Fault cases of `build` around the file system, run as a user would: kill -9 mid-way, a full disk (a small tmpfs
// mounted by the test), a read-only output directory, an output path that is a file. Each: the error says what and
// where (ENOSPC / EROFS, the file) and what to do; nothing under a final name; the next build starts clean.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, cliKilled, assertClean, leftovers, mountTmpfs, workspace, type Workspace } from './helpers.ts';

let w: Workspace;
test.before(async () => {
  w = await workspace('pi-image-faults-build-');
});
test.after(() => rmSync(w.dir, { recursive: true, force: true }));

const args = (out: string, ...more: string[]) => ['build', 'node1', '--image', w.look.img, '--secrets', w.secrets, '--cache', w.cache, '--out', out, ...more];
const finals = (out: string) => (existsSync(out) ? readdirSync(out).filter((n) => !n.startsWith('.')) : []);

test('build killed with SIGKILL mid-way: no final name; the next build completes and removes the leftovers', async () => {
  const out = join(w.dir, 'killed');
  const k = await cliKilled(w.dir, args(out), { when: /node1: (sd|ssd|checksum)/ });
  assert.ok(k.killed, `killed mid-way: ${k.stderr}`);
  assert.equal(finals(out), [], 'nothing under a final name');
  const r = cli(w.dir, args(out));
  assert.is(r.code, 0, r.stderr);
  assert.equal(finals(out).sort(), ['manifest.json', 'node1']);
  assert.equal(leftovers(out), [], 'the killed build\'s staging is gone');
});

test('build onto a full disk: ENOSPC names the file and says what to do; nothing left', () => {
  const fs = mountTmpfs(12 * 1024);
  if (typeof fs === 'string') throw new Error(fs);
  try {
    const out = join(fs.dir, 'out');
    const r = cli(w.dir, args(out));
    assertClean(r, { names: [/no space left/, fs.dir, 'ENOSPC'], clean: [fs.dir] });
    assert.match(r.stderr, /Free some space|more room/);
    assert.equal(finals(out), [], 'nothing under a final name');
  } finally {
    fs.unmount();
  }
});

test('build into a read-only file system: EROFS names the directory (not ENOENT: mkdir)', () => {
  const fs = mountTmpfs(1024, { readOnly: true });
  if (typeof fs === 'string') throw new Error(fs);
  try {
    const out = join(fs.dir, 'deep', 'out');
    const r = cli(w.dir, args(out));
    assertClean(r, { names: [/read-only file system/, 'EROFS', fs.dir] });
    assert.not.match(r.stderr, /ENOENT/);
  } finally {
    fs.unmount();
  }
});

test('build with --out naming a file: says it is not a directory', () => {
  const file = join(w.dir, 'a-file');
  writeFileSync(file, 'not a directory\n');
  const r = cli(w.dir, args(join(file, 'out')));
  assertClean(r, { names: [file, /not a directory|ENOTDIR|EEXIST/] });
});

test('build whose cache directory is read-only: EROFS names it', () => {
  const fs = mountTmpfs(1024, { readOnly: true });
  if (typeof fs === 'string') throw new Error(fs);
  try {
    const out = join(w.dir, 'ro-cache-out');
    mkdirSync(out, { recursive: true });
    const r = cli(w.dir, ['build', 'node1', '--image', w.look.img, '--secrets', w.secrets, '--cache', join(fs.dir, 'cache'), '--out', out]);
    assertClean(r, { names: [/read-only file system/, fs.dir] });
    assert.equal(finals(out), []);
  } finally {
    fs.unmount();
  }
});

test.run();
