// Test helper: a cluster secrets directory with the same bytes on every run, so a build made from it can be
// compared by sha256 with one recorded earlier (test/build/reference-bytes.test.ts).
// pi-image makes its secrets with random keys; here the RSA keys come from primes found by a seeded search
// (sha256 in counter mode, trial division, then Miller-Rabin with seeded bases), the CA certificate is signed by
// the product's own x509.ts with a fixed serial, and the other secrets are fixed strings.
// Invariants: same seed → same files; the files are what loadOrCreateSecrets reads (names, modes 0600, dir 0700).
// These keys are public test data: never use them for anything real.
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selfSignedCa } from '../../lib/cluster/x509.ts';
import { sshRsaPublic } from '../../lib/cluster/secrets.ts';

/** A deterministic stream of bytes: sha256(seed ‖ counter) blocks. */
function seededBytes(seed: string): (n: number) => Buffer {
  let counter = 0;
  return (n) => {
    const out: Buffer[] = [];
    for (let have = 0; have < n; have += 32) out.push(createHash('sha256').update(`${seed}/${counter++}`).digest());
    return Buffer.concat(out).subarray(0, n);
  };
}

const big = (b: Buffer) => BigInt('0x' + (b.toString('hex') || '0'));

function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  base %= mod;
  while (exp > 0n) {
    if (exp & 1n) r = (r * base) % mod;
    base = (base * base) % mod;
    exp >>= 1n;
  }
  return r;
}

const SMALL_PRIMES = (() => {
  const ps: bigint[] = [];
  for (let n = 3; ps.length < 300; n += 2) if (ps.every((p) => BigInt(n) % p !== 0n)) ps.push(BigInt(n));
  return ps;
})();

function probablyPrime(n: bigint, rand: (n: number) => Buffer, bytes: number): boolean {
  for (const p of SMALL_PRIMES) if (n % p === 0n) return n === p;
  let d = n - 1n;
  let s = 0;
  while ((d & 1n) === 0n) {
    d >>= 1n;
    s++;
  }
  witness: for (let i = 0; i < 20; i++) {
    const a = 2n + (big(rand(bytes)) % (n - 3n));
    let x = modPow(a, d, n);
    if (x === 1n || x === n - 1n) continue;
    for (let r = 1; r < s; r++) {
      x = (x * x) % n;
      if (x === n - 1n) continue witness;
    }
    return false;
  }
  return true;
}

/** A prime of exactly `bits` bits with the top two bits set (so p·q has 2·bits bits), p ≢ 1 mod e. */
function seededPrime(bits: number, rand: (n: number) => Buffer, e: bigint): bigint {
  const bytes = bits / 8;
  for (;;) {
    let c = big(rand(bytes)) | (3n << BigInt(bits - 2)) | 1n;
    for (let step = 0; step < 20_000; step++, c += 2n) {
      if (c % e === 1n) continue;
      if (probablyPrime(c, rand, bytes)) return c;
    }
  }
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [a % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

const b64u = (n: bigint) => {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  return Buffer.from(hex, 'hex').toString('base64url');
};

/** An RSA private key of `bits` bits, the same for the same seed. */
export function seededRsaKey(seed: string, bits: number): KeyObject {
  const rand = seededBytes(seed);
  const e = 65537n;
  let p = seededPrime(bits / 2, rand, e);
  let q = seededPrime(bits / 2, rand, e);
  if (p < q) [p, q] = [q, p];
  const n = p * q;
  const d = modInverse(e, (p - 1n) * (q - 1n));
  const jwk = { kty: 'RSA', n: b64u(n), e: b64u(e), d: b64u(d), p: b64u(p), q: b64u(q), dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(modInverse(q, p)) };
  return createPrivateKey({ key: jwk, format: 'jwk' });
}

/** Write a secrets directory for `clusterName` into `dir`: the same bytes for the same seed, on every run. */
export function writeFixedSecrets(dir: string, clusterName: string, seed = 'pi-image reference secrets'): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const put = (name: string, data: string) => writeFileSync(join(dir, name), data, { mode: 0o600 });
  const ca = seededRsaKey(`${seed}/ca`, 2048);
  put('ca.key', ca.export({ type: 'pkcs1', format: 'pem' }) as string);
  const serial = createHash('sha256').update(`${seed}/serial`).digest().subarray(0, 16);
  serial[0]! &= 0x7f;
  put('ca.crt', selfSignedCa({ key: ca, commonName: 'kubernetes', serial }));
  put('bootstrap-token', 'abcdef.0123456789abcdef\n');
  put('heketi-admin-key', 'ReferenceHeketiAdminKey012345678\n'); // 32 characters, as secrets.ts makes
  put('metallb-memberlist-key', seededBytes(`${seed}/metallb`)(128).toString('base64') + '\n');
  const ssh = seededRsaKey(`${seed}/ssh`, 3072);
  put('heketi-ssh-key', ssh.export({ type: 'pkcs1', format: 'pem' }) as string);
  put('heketi-ssh-key.pub', sshRsaPublic(createPublicKey(ssh).export({ type: 'spki', format: 'pem' }) as string, `heketi@${clusterName}`) + '\n');
}
