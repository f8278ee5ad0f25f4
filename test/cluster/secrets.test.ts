// Secrets: made once with the right modes, reused, checked by openssl, overridable by env, never printed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { statSync, readdirSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { homedir } from 'node:os';
import { loadOrCreateSecrets, secretsDir, TOKEN_RE } from '../../lib/cluster/secrets.ts';
import { BUILTIN_PROFILE, PACKAGE_ROOT } from '../../lib/cluster/profile.ts';
import { InputError } from '../../lib/errors.ts';
import { tempDir } from '../helpers/cluster.ts';

const t = tempDir('pi-image-secrets-test-');
process.on('exit', t.cleanup);
const cluster = { cluster: { name: 'c1' } };

test('made once: 0700 directory, 0600 files, a CA openssl accepts, a valid token', async () => {
  const dir = join(t.dir, 'a', 'c1');
  const s = await loadOrCreateSecrets(cluster, { dir });
  assert.is(statSync(dir).mode & 0o777, 0o700);
  for (const f of readdirSync(dir)) assert.is(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  assert.match(s.token, TOKEN_RE);
  const text = execFileSync('openssl', ['x509', '-in', join(dir, 'ca.crt'), '-noout', '-text']).toString();
  assert.match(text, /CA:TRUE/);
  assert.match(text, /Subject: CN ?= ?kubernetes/);
  assert.match(text, /Certificate Sign/);
  // The key matches the certificate.
  const certPub = execFileSync('openssl', ['x509', '-in', join(dir, 'ca.crt'), '-noout', '-pubkey']).toString();
  const keyPub = execFileSync('openssl', ['pkey', '-in', join(dir, 'ca.key'), '-pubout']).toString();
  assert.is(certPub, keyPub);
  // The Heketi SSH public key is an OpenSSH key ssh-keygen reads, matching the private key.
  const fromPriv = execFileSync('ssh-keygen', ['-y', '-f', join(dir, 'heketi-ssh-key')]).toString().trim();
  assert.is(s.heketiSshPublicKey.split(' ').slice(0, 2).join(' '), fromPriv.split(' ').slice(0, 2).join(' '));
  assert.is(Buffer.from(s.metallbMemberlistKey, 'base64').length, 128);
  assert.match(s.heketiAdminKey, /^[A-Za-z0-9]{32}$/);
});

test('reused: a second load returns the same values; a missing file is an error, not a new CA', async () => {
  const dir = join(t.dir, 'a', 'c1');
  const a = await loadOrCreateSecrets(cluster, { dir });
  const b = await loadOrCreateSecrets(cluster, { dir });
  assert.equal({ ...a }, { ...b });
  const broken = join(t.dir, 'broken');
  mkdirSync(broken, { mode: 0o700 });
  copyFileSync(join(dir, 'ca.crt'), join(broken, 'ca.crt'));
  try {
    await loadOrCreateSecrets(cluster, { dir: broken });
    assert.unreachable();
  } catch (err) {
    assert.instance(err, InputError);
    assert.match((err as Error).message, /lacks ca\.key/);
  }
});

test('a bad token file is refused', async () => {
  const dir = join(t.dir, 'bad-token');
  await loadOrCreateSecrets(cluster, { dir });
  writeFileSync(join(dir, 'bootstrap-token'), 'ABCDEF.0123456789abcdef\n');
  try {
    await loadOrCreateSecrets(cluster, { dir });
    assert.unreachable();
  } catch (err) {
    assert.match((err as Error).message, /not a bootstrap token/);
  }
});

test("where: --secrets, then PI_IMAGE_SECRETS, then beside the profile; the built-in profile uses the user's state dir", () => {
  const saved = process.env.PI_IMAGE_SECRETS;
  const savedState = process.env.XDG_STATE_HOME;
  try {
    delete process.env.PI_IMAGE_SECRETS;
    assert.is(secretsDir('c1', { profilePath: '/home/me/cl/pi-image.yaml' }), '/home/me/cl/.pi-image-state/c1');
    delete process.env.XDG_STATE_HOME;
    assert.is(secretsDir('c1', { profilePath: BUILTIN_PROFILE }), join(homedir(), '.local', 'state', 'pi-image', 'c1'));
    assert.is(secretsDir('c1', {}), join(homedir(), '.local', 'state', 'pi-image', 'c1'));
    process.env.XDG_STATE_HOME = '/var/lib/me';
    assert.is(secretsDir('c1', { profilePath: BUILTIN_PROFILE }), '/var/lib/me/pi-image/c1');
    process.env.XDG_STATE_HOME = 'relative/ignored';
    assert.is(secretsDir('c1', { profilePath: BUILTIN_PROFILE }), join(homedir(), '.local', 'state', 'pi-image', 'c1'));
    process.env.PI_IMAGE_SECRETS = '/ci/secrets';
    assert.is(secretsDir('c1', { profilePath: '/home/me/cl/pi-image.yaml' }), '/ci/secrets');
    assert.is(secretsDir('c1', { dir: '/explicit' }), '/explicit');
  } finally {
    if (saved === undefined) delete process.env.PI_IMAGE_SECRETS;
    else process.env.PI_IMAGE_SECRETS = saved;
    if (savedState === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = savedState;
  }
});

// A Pi has no RTC: fixrtc starts its clock at the root fs's last mount time (the 19.10.1 image: its build, late
// 2019), systemd at least at its own build date. The CA (and so every certificate kubeadm signs with its notBefore)
// must already be valid then.
test('CA valid from 2000-01-01: openssl accepts it, and a certificate it signs, at a clock of 2019-06-01', async () => {
  const dir = join(t.dir, 'clock', 'c1');
  const s = await loadOrCreateSecrets(cluster, { dir });
  const ca = join(dir, 'ca.crt');
  const dates = execFileSync('openssl', ['x509', '-in', ca, '-noout', '-startdate', '-enddate']).toString();
  assert.match(dates, /notBefore=Jan  1 00:00:00 2000 GMT/);
  assert.match(dates, /notAfter=Jan  1 00:00:00 2100 GMT/);
  const at2019 = String(Date.UTC(2019, 5, 1) / 1000);
  assert.match(execFileSync('openssl', ['verify', '-attime', at2019, '-CAfile', ca, ca]).toString(), /: OK/);
  assert.match(execFileSync('openssl', ['verify', '-x509_strict', '-CAfile', ca, ca]).toString(), /: OK/);
  // A leaf signed the way kubeadm signs (the CA's notBefore), checked at the 2019 clock.
  const leafKey = join(t.dir, 'leaf.key');
  const csr = join(t.dir, 'leaf.csr');
  const leaf = join(t.dir, 'leaf.crt');
  execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', leafKey, '-subj', '/CN=kube-apiserver', '-out', csr], { stdio: 'ignore' });
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', join(dir, 'ca.key'), '-set_serial', '7', '-days', '365', '-out', leaf], { stdio: 'ignore' });
  assert.match(execFileSync('openssl', ['verify', '-CAfile', ca, leaf]).toString(), /: OK/);
  // The DER openssl reads back carries the extensions kubeadm looks for.
  const text = execFileSync('openssl', ['x509', '-in', ca, '-noout', '-text']).toString();
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Certificate Sign/);
  assert.match(text, /X509v3 Subject Key Identifier/);
  assert.match(s.discoveryHash, /^sha256:[0-9a-f]{64}$/);
});

test('a CA made by an older pi-image (notBefore = its build time) is re-issued early with the same key and hash', async () => {
  const dir = join(t.dir, 'old', 'c1');
  await loadOrCreateSecrets(cluster, { dir });
  // What the old code made: openssl req -x509 now, 100 years.
  execFileSync('openssl', ['req', '-x509', '-new', '-key', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '36500', '-subj', '/CN=kubernetes',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign']);
  const oldHash = execFileSync('sh', ['-c', `openssl x509 -in ${join(dir, 'ca.crt')} -pubkey -noout | openssl pkey -pubin -outform der | sha256sum`]).toString().split(' ')[0];
  const s = await loadOrCreateSecrets(cluster, { dir });
  assert.is(s.discoveryHash, `sha256:${oldHash}`, 'the discovery hash (of the key) is unchanged');
  assert.match(execFileSync('openssl', ['x509', '-in', join(dir, 'ca.crt'), '-noout', '-startdate']).toString(), /2000 GMT/);
  assert.is(statSync(join(dir, 'ca.crt')).mode & 0o777, 0o600);
  const again = await loadOrCreateSecrets(cluster, { dir });
  assert.is(again.caCert, s.caCert, 'stable once re-issued');
});

test('the built-in profile still finds secrets an earlier version left in ./.pi-image-state while the state dir has none', () => {
  const savedState = process.env.XDG_STATE_HOME;
  const savedCwd = process.cwd();
  const savedSecrets = process.env.PI_IMAGE_SECRETS;
  try {
    delete process.env.PI_IMAGE_SECRETS;
    const cwd = join(t.dir, 'legacy-cwd');
    mkdirSync(join(cwd, '.pi-image-state', 'c9'), { recursive: true });
    process.env.XDG_STATE_HOME = join(t.dir, 'legacy-state');
    process.chdir(cwd);
    assert.is(secretsDir('c9', { profilePath: BUILTIN_PROFILE }), join(cwd, '.pi-image-state', 'c9'));
    mkdirSync(join(t.dir, 'legacy-state', 'pi-image', 'c9'), { recursive: true });
    assert.is(secretsDir('c9', { profilePath: BUILTIN_PROFILE }), join(t.dir, 'legacy-state', 'pi-image', 'c9'));
  } finally {
    process.chdir(savedCwd);
    if (savedState === undefined) delete process.env.XDG_STATE_HOME;
    else process.env.XDG_STATE_HOME = savedState;
    if (savedSecrets === undefined) delete process.env.PI_IMAGE_SECRETS;
    else process.env.PI_IMAGE_SECRETS = savedSecrets;
  }
});

test('onCreated is called once, when the secrets are made, and not when they are loaded', async () => {
  const dir = join(t.dir, 'once', 'c1');
  const seen: string[] = [];
  const a = await loadOrCreateSecrets(cluster, { dir, onCreated: (d) => seen.push(d) });
  const b = await loadOrCreateSecrets(cluster, { dir, onCreated: (d) => seen.push(d) });
  assert.equal(seen, [dir]);
  assert.is(a.token, b.token);
});

test('never printed: JSON and inspect show no secret', async () => {
  const s = await loadOrCreateSecrets(cluster, { dir: join(t.dir, 'a', 'c1') });
  for (const text of [JSON.stringify(s), inspect(s), JSON.stringify({ nested: s })]) {
    assert.not.ok(text.includes(s.token));
    assert.not.ok(text.includes('PRIVATE KEY'));
    assert.not.ok(text.includes(s.heketiAdminKey));
  }
});

test('made by several processes at once: all get the same secrets', async () => {
  const dir = join(t.dir, 'race', 'c1');
  const loader = pathToFileURL(join(PACKAGE_ROOT, 'node_modules/tsx/dist/esm/index.mjs')).href;
  const mod = pathToFileURL(join(PACKAGE_ROOT, 'lib/cluster/secrets.ts')).href;
  const code = `const { loadOrCreateSecrets } = await import(${JSON.stringify(mod)}); const s = await loadOrCreateSecrets({ cluster: { name: 'c1' } }, { dir: ${JSON.stringify(dir)} }); process.stdout.write(s.token);`;
  const run = () =>
    new Promise<string>((res, rej) => {
      const c = spawn(process.execPath, ['--import', loader, '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('close', (code) => (code === 0 ? res(out) : rej(new Error(`exit ${code}`))));
    });
  const tokens = await Promise.all([run(), run(), run()]);
  assert.match(tokens[0]!, TOKEN_RE);
  assert.equal(tokens, [tokens[0], tokens[0], tokens[0]]);
  assert.equal(readdirSync(join(t.dir, 'race')), ['c1']);
});

test.run();
