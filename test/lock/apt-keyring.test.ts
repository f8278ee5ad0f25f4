// The OpenPGP side of the trust chain with keys made by the real gpg: a binary keyring file holding several keys,
// an armored one, an RSA key whose self-signatures use SHA-1 (as archive keys made before ~2016 do), signatures
// by a signing subkey; and the refusals: a SHA-1 message signature (apt refuses it too), a damaged signed text,
// a file that is not clearsigned, a keybox that is not a keyring.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync, readFileSync } from 'node:fs';
import { readKeyring, readKeyFile, verifyClearsigned } from '../../lib/lock/apt/keyring.ts';
import { InputError, VerifyError } from '../../lib/errors.ts';
import { makeKey, sh, stopAgent, tmp, type TestKey } from '../helpers/apt-repo.ts';

const dir = tmp();
const keys: TestKey[] = [];
const RELEASE = 'Origin: Test\nSuite: stable\nCodename: test\nSHA256:\n ' + 'a'.repeat(64) + ' 1 main/binary-arm64/Packages\n';
writeFileSync(join(dir, 'Release'), RELEASE);
/** The signed text as OpenPGP defines it: the line break before the signature is not part of it. */
const SIGNED = RELEASE.replace(/\n$/, '');

/** A key in its own GNUPGHOME, stopped at the end. */
function key(name: string, algo: string): TestKey {
  const k = makeKey(dir, name, algo);
  keys.push(k);
  return k;
}

function clearsign(k: TestKey, digest = 'SHA256'): string {
  return execFileSync('gpg', ['--batch', '--yes', '--digest-algo', digest, '--clearsign', '-o', '-', join(dir, 'Release')], { env: k.env, encoding: 'utf8' });
}

test.after(() => {
  for (const k of keys) stopAgent(k);
  sh('rm', ['-rf', dir]);
});

test('a binary keyring with several keys; SHA-1-certified RSA 4096; an ed25519 signing subkey', async () => {
  const old = key('old', 'rsa4096');
  // Re-make its self-signature with SHA-1, as 2012-era archive keys carry.
  sh('gpg', ['--batch', '--yes', '--cert-digest-algo', 'SHA1', '--quick-set-expire', old.fingerprint, '0'], { env: old.env });
  old.binary = execFileSync('gpg', ['--batch', '--export', old.fingerprint], { env: old.env });
  const sub = key('sub', 'ed25519');
  sh('gpg', ['--batch', '--passphrase', '', '--quick-add-key', sub.fingerprint, 'ed25519', 'sign', 'never'], { env: sub.env });
  sub.binary = execFileSync('gpg', ['--batch', '--export', sub.fingerprint], { env: sub.env });
  const ring = await readKeyring([{ name: 'trusted.gpg', data: Buffer.concat([old.binary, sub.binary]) }]);
  assert.is(ring.length, 2);
  assert.is(await verifyClearsigned(clearsign(old), ring, 'u1'), SIGNED);
  // gpg signs with the newest signing subkey: the signature names the subkey, found through its primary.
  const bySub = clearsign(sub);
  assert.is(await verifyClearsigned(bySub, ring, 'u2'), SIGNED);
  const armored = await readKeyFile({ name: 'k.asc', data: execFileSync('gpg', ['--batch', '--armor', '--export', sub.fingerprint], { env: sub.env, encoding: 'utf8' }) });
  assert.is(await verifyClearsigned(bySub, armored, 'u3'), SIGNED);
});

test('refused: SHA-1 message signature, damaged text, not clearsigned, no trusted key, a keybox', async () => {
  const k = key('plain', 'rsa3072');
  const ring = await readKeyring([{ name: 'k.gpg', data: k.binary }]);
  const sha1 = clearsign(k, 'SHA1');
  try {
    await verifyClearsigned(sha1, ring, 'http://m/dists/x/InRelease');
    assert.unreachable('SHA-1 accepted');
  } catch (e) {
    assert.instance(e, VerifyError);
    assert.match((e as Error).message, /^http:\/\/m\/dists\/x\/InRelease: BAD signature by key [0-9A-F]{16}/);
  }
  const damaged = clearsign(k).replace('Suite: stable', 'Suite: stablf');
  try {
    await verifyClearsigned(damaged, ring, 'u');
    assert.unreachable('damaged accepted');
  } catch (e) {
    assert.match((e as Error).message, /^u: BAD signature/);
  }
  try {
    await verifyClearsigned('<html>404</html>', ring, 'u');
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /not a clearsigned file/);
  }
  const other = await readKeyring([{ name: 'o.gpg', data: keys[0].binary }]);
  try {
    await verifyClearsigned(clearsign(k), other, 'u');
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /^u: no signature by a trusted key \(signed by [0-9A-F]{16}\)/);
  }
  const kbx = readFileSync(join(k.home, 'pubring.kbx'));
  try {
    await readKeyFile({ name: 'img:/etc/apt/trusted.gpg.d/x.gpg', data: kbx });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, InputError);
    assert.match((e as Error).message, /^img:\/etc\/apt\/trusted.gpg.d\/x.gpg: not an OpenPGP keyring apt could use/);
  }
});

test.run();
