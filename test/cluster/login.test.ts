// "No way in": a profile whose nodes nobody can log in to is named in one line (build), and `init` without a key
// says so too. Through the real CLI for init; loginWarning directly for the profile cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT, parseProfile } from '../../lib/cluster/profile.ts';
import { loginWarning } from '../../lib/cluster/login.ts';
import { tempDir } from '../helpers/cluster.ts';

const t = tempDir('pi-image-login-');
process.on('exit', t.cleanup);
const base = 'apiVersion: pi-image/v1\nkubernetes: {enabled: false}\nglusterfs: {enabled: false}\nnodes: [{name: a, address: dhcp}]\n';
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq1XqfV0ClSaFQ7x6MjRQz3Hh3Gmv0T6ZKPR0AhX9yE me@laptop';

test('loginWarning: names users[0].sshKeys when no user has a key or a password login', () => {
  assert.match(loginWarning(parseProfile(`${base}users: [{name: pi}]\n`))!, /^no user can log in to the nodes: users\[0\]\.sshKeys is empty and password login is off/);
  assert.match(loginWarning(parseProfile(base))!, /the profile has no `users`/);
  assert.is(loginWarning(parseProfile(`${base}users: [{name: pi, sshKeys: ["${KEY}"]}]\n`)), undefined);
  // A password hash alone is not a way in (password login stays off unless asked for).
  const hash = '$6$salt$' + 'a'.repeat(86);
  assert.ok(loginWarning(parseProfile(`${base}users: [{name: pi, passwordHash: '${hash}'}]\n`)));
  assert.is(loginWarning(parseProfile(`${base}users: [{name: pi, passwordHash: '${hash}', passwordLogin: true}]\n`)), undefined);
});

test('init without --ssh-key warns in one line that nobody can log in; with one, it does not', () => {
  const cli = (args: string[]) =>
    spawnSync(process.execPath, ['--import', pathToFileURL(join(PACKAGE_ROOT, 'node_modules/tsx/dist/esm/index.mjs')).href, join(PACKAGE_ROOT, 'bin/pi-image.ts'), ...args], { cwd: t.dir, encoding: 'utf8' });
  const r = cli(['init', 'nokey', '--nodes', '1']);
  assert.is(r.status, 0, r.stderr);
  const warnings = r.stderr.split('\n').filter((l) => l.startsWith('warning:'));
  assert.is(warnings.length, 1);
  assert.match(warnings[0]!, /^warning: no SSH key given: nobody can log in to the nodes; add one to users\[0\]\.sshKeys in .*pi-image\.yaml/);
  const ok = cli(['init', 'withkey', '--nodes', '1', '--ssh-key', KEY]);
  assert.is(ok.status, 0, ok.stderr);
  assert.not.match(ok.stderr, /warning:/);
});

test.run();
