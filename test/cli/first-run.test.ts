// A new user's first run, as the README has it, through the real CLI in an empty directory with an empty home:
// `pi-image build --all --mirror URL` against a local copy of the (lookalike) Ubuntu 19.10.1 image with its
// SHA256SUMS under the catalog's own path. No warning; the new cluster secrets are made once, in the user's state
// directory (never the cwd), and the run says where and to keep them; the last lines say how to flash, with the
// --out path as given. A second run from another directory reuses the same CA. A run that cannot get the image
// makes no secrets at all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUbuntuLookalike, tempDir } from '../helpers/lookalike.ts';
import { startServer, type TestServer } from '../helpers/source-server.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FILE = 'ubuntu-19.10.1-preinstalled-server-arm64+raspi3.img.xz';
let work: string;
let server: TestServer;
let home: string;

function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, NO_COLOR: '1', CI: '1' };
  for (const k of ['FORCE_COLOR', 'XDG_STATE_HOME', 'XDG_CACHE_HOME', 'PI_IMAGE_SECRETS', 'PI_IMAGE_CACHE', 'PI_IMAGE_MIRROR', 'SOURCE_DATE_EPOCH']) delete env[k];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'bin', 'pi-image.js'), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test.before(async () => {
  work = tempDir('pi-image-first-run-');
  home = join(work, 'home');
  mkdirSync(home);
  const look = await makeUbuntuLookalike(join(work, 'src'), { variant: 'late2019', legacyCmdline: true });
  execFileSync('xz', ['-T1', '-0', '-k', look.img]);
  const xz = join(work, FILE);
  renameSync(`${look.img}.xz`, xz);
  const sha = createHash('sha256').update(readFileSync(xz)).digest('hex');
  writeFileSync(join(work, 'SHA256SUMS'), `${sha} *${FILE}\n`);
  server = await startServer();
  // The catalog's first URL is http://old-releases.ubuntu.com/releases/19.10.1/<file>: the mirror keeps the path.
  server.routes.set(`/releases/19.10.1/${FILE}`, { file: xz });
  server.routes.set('/releases/19.10.1/SHA256SUMS', { file: join(work, 'SHA256SUMS') });
});

test.after(async () => {
  await server?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

const state = () => join(home, '.local', 'state', 'pi-image', 'yarpi4');

test('a run that cannot get the image makes no cluster secrets', async () => {
  const closed = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
  const cwd = join(work, 'offline');
  mkdirSync(cwd);
  const r = await cli(['build', '--all', '--mirror', `http://127.0.0.1:${closed}`], cwd);
  assert.is(r.code, 1, r.stderr);
  assert.not.ok(existsSync(state()), 'no secrets in the state directory');
  assert.not.ok(existsSync(join(cwd, '.pi-image-state')), 'none in the cwd');
  assert.not.match(r.stderr, /cluster secrets/);
});

/** The built-in profile's user has no key: that warning, naming the key to set, is expected; no other. */
const loginWarningOnly = (line: string): boolean => /users\[0\]\.sshKeys/.test(line);

test('first run: only the no-login warning, secrets made once in the state dir and said so, the last lines say how to flash', async () => {
  const cwd = join(work, 'first');
  mkdirSync(cwd);
  const r = await cli(['build', '--all', '--mirror', server.url], cwd);
  assert.is(r.code, 0, r.stderr);
  // The one warning is the one that must be there: the built-in profile's admin user has no SSH key (issue 15).
  assert.equal(r.stderr.split('\n').filter((l) => /warning/i.test(l)).map(loginWarningOnly), [true], r.stderr);
  const notes = r.stderr.split('\n').filter((l) => /new cluster secrets/.test(l));
  assert.match(r.stderr, /hold cluster secrets in the seed .*written 0600/, 'the secret-holding images are named once (issue 15)');
  assert.is(notes.length, 1, r.stderr);
  assert.ok(notes[0]!.includes(state()) && /keep them/.test(notes[0]!), notes[0]);
  assert.is(statSync(state()).mode & 0o777, 0o700);
  assert.not.ok(existsSync(join(cwd, '.pi-image-state')), 'nothing in the cwd');
  const token = readFileSync(join(state(), 'bootstrap-token'), 'utf8').trim();
  assert.not.ok(r.stdout.includes(token) || r.stderr.includes(token), 'the token is never printed');
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 10, r.stdout);
  assert.is(lines[0], 'Built 4 nodes into out/ (manifest: out/manifest.json).');
  assert.is(lines[1], 'Flash them with:');
  for (const n of [1, 2, 3, 4]) {
    assert.ok(lines.includes(`  pi-image flash out/node${n}/sd.img /dev/sdX     # SD card of node${n}`), `node${n} sd`);
    assert.ok(lines.includes(`  pi-image flash out/node${n}/ssd.img /dev/sdY    # SSD of node${n}`), `node${n} ssd`);
    assert.ok(existsSync(join(cwd, 'out', `node${n}`, 'sd.img')) && existsSync(join(cwd, 'out', `node${n}`, 'ssd.img')));
  }
});

test('from another directory, with --out outside it: the same secrets, no new ones, the paths as given', async () => {
  const ca = readFileSync(join(state(), 'ca.crt'), 'utf8');
  const cwd = join(work, 'second');
  mkdirSync(cwd);
  const r = await cli(['build', 'node2', '--mirror', server.url, '--out', '../elsewhere/out'], cwd);
  assert.is(r.code, 0, r.stderr);
  assert.not.match(r.stderr, /new cluster secrets/i);
  assert.ok(r.stderr.split('\n').filter((l) => /warning/i.test(l)).every(loginWarningOnly), r.stderr);
  assert.is(readFileSync(join(state(), 'ca.crt'), 'utf8'), ca, 'one CA for both builds');
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines, [
    'Built 1 node into ../elsewhere/out/ (manifest: ../elsewhere/out/manifest.json).',
    'Flash it with:',
    '  pi-image flash ../elsewhere/out/node2/sd.img /dev/sdX     # SD card of node2',
    '  pi-image flash ../elsewhere/out/node2/ssd.img /dev/sdY    # SSD of node2',
  ]);
  assert.ok(existsSync(join(work, 'elsewhere', 'out', 'node2', 'sd.img')));
});

test.run();
