// Cluster secrets, made once and reused:
// - the Kubernetes CA: key by node:crypto, self-signed certificate encoded in x509.ts, valid from CA_NOT_BEFORE so
//   a node whose clock starts years behind accepts it;
// - the kubeadm bootstrap token and the discovery hash;
// - the Heketi admin key and SSH key, and the MetalLB memberlist key.
// Where they live (a state directory, 0700, files 0600): `--secrets DIR` / $PI_IMAGE_SECRETS, else beside a
// user's profile, else (the built-in profiles) the user's state directory, so two builds from two directories
// share one CA. The caller is told when they are new, to say where and to keep them.
// Invariants: nothing here prints them; the Secrets object hides them from JSON.stringify and console.log.
import { createHash, createPublicKey, generateKeyPairSync, randomBytes, randomInt, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { inspect } from 'node:util';
import { InputError } from '../errors.ts';
import { BUILTIN_PROFILE, PACKAGE_ROOT } from './profile.ts';
import { CA_NOT_BEFORE, selfSignedCa } from './x509.ts';

export interface Secrets {
  /** Where they are stored. */
  dir: string;
  caCert: string;
  caKey: string;
  /** kubeadm bootstrap token `[a-z0-9]{6}.[a-z0-9]{16}`. */
  token: string;
  /** `sha256:<hex>` of the CA's DER SubjectPublicKeyInfo (kubeadm join --discovery-token-ca-cert-hash). */
  discoveryHash: string;
  heketiAdminKey: string;
  /** RSA private key (PKCS#1 PEM) Heketi uses to reach every node as root. */
  heketiSshKey: string;
  /** The matching OpenSSH public key line. */
  heketiSshPublicKey: string;
  /** base64 of 128 random bytes. */
  metallbMemberlistKey: string;
}

export const TOKEN_RE = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;

const FILES = {
  caCert: 'ca.crt',
  caKey: 'ca.key',
  token: 'bootstrap-token',
  heketiAdminKey: 'heketi-admin-key',
  heketiSshKey: 'heketi-ssh-key',
  heketiSshPublicKey: 'heketi-ssh-key.pub',
  metallbMemberlistKey: 'metallb-memberlist-key',
} as const;

export interface SecretsOptions {
  /** Explicit directory (--secrets); else $PI_IMAGE_SECRETS; else beside the profile. */
  dir?: string;
  /** The profile file, to put the state directory beside it. */
  profilePath?: string;
  /** Called with the directory when the secrets were made now (not loaded): they must be kept from now on. */
  onCreated?: (dir: string) => void;
}

/** The user's state directory for pi-image: $XDG_STATE_HOME/pi-image, else ~/.local/state/pi-image. */
export function userStateDir(): string {
  const xdg = process.env.XDG_STATE_HOME;
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), '.local', 'state'), 'pi-image');
}

/**
 * Where the secrets of `clusterName` live: --secrets, $PI_IMAGE_SECRETS, `.pi-image-state/<cluster>` beside a
 * user's profile, and for the built-in profiles (none given, or one of pi-image's profiles/) the user's state
 * directory: `$XDG_STATE_HOME/pi-image/<cluster>`, else `~/.local/state/pi-image/<cluster>` (or, when that does
 * not exist, `./.pi-image-state/<cluster>` made there by an earlier version).
 */
export function secretsDir(clusterName: string, opts: SecretsOptions = {}): string {
  if (opts.dir) return resolve(opts.dir);
  if (process.env.PI_IMAGE_SECRETS) return resolve(process.env.PI_IMAGE_SECRETS);
  const profile = opts.profilePath && resolve(opts.profilePath);
  const builtin = !profile || profile === BUILTIN_PROFILE || profile.startsWith(join(PACKAGE_ROOT, 'profiles') + '/');
  if (!builtin) return join(dirname(profile), '.pi-image-state', clusterName);
  const state = join(userStateDir(), clusterName);
  // Earlier builds of the built-in profile kept them in the cwd: such secrets are still used (nodes
  // built with them must keep agreeing) as long as the state directory has none.
  const legacy = join(process.cwd(), '.pi-image-state', clusterName);
  return !existsSync(state) && existsSync(legacy) ? legacy : state;
}

/** Load the cluster's secrets, creating them on first use. */
export async function loadOrCreateSecrets(profile: { cluster: { name: string } }, opts: SecretsOptions = {}): Promise<Secrets> {
  const dir = secretsDir(profile.cluster.name, opts);
  if (!existsSync(dir) && create(dir, profile.cluster.name)) opts.onCreated?.(dir);
  return load(dir);
}

function load(dir: string): Secrets {
  const st = statSync(dir);
  if (!st.isDirectory()) throw new InputError(`secrets path ${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  const read = (name: string): string => {
    const f = join(dir, name);
    if (!existsSync(f)) throw new InputError(`secrets directory ${dir} lacks ${name}`, 'restore it from your backup, or move the directory away to make new secrets (nodes already built would then need rebuilding)');
    if ((statSync(f).mode & 0o077) !== 0) chmodSync(f, 0o600);
    return readFileSync(f, 'utf8');
  };
  const v = Object.fromEntries(Object.entries(FILES).map(([k, f]) => [k, read(f)])) as Record<keyof typeof FILES, string>;
  v.token = v.token.trim();
  if (!TOKEN_RE.test(v.token)) throw new InputError(`${join(dir, FILES.token)} is not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})`);
  v.heketiAdminKey = v.heketiAdminKey.trim();
  v.metallbMemberlistKey = v.metallbMemberlistKey.trim();
  v.heketiSshPublicKey = v.heketiSshPublicKey.trim();
  let discoveryHash: string;
  try {
    v.caCert = caValidEarly(dir, v.caCert, v.caKey);
    discoveryHash = discoveryHashOf(v.caCert);
  } catch (err) {
    throw new InputError(`${join(dir, FILES.caCert)} is not a PEM certificate: ${(err as Error).message}`);
  }
  return hide({ dir, ...v, discoveryHash });
}

/**
 * A CA certificate made by an older pi-image (notBefore = its build time) is re-issued with the same key and
 * subject and notBefore = CA_NOT_BEFORE: the discovery hash (of the key) stays, and what it signed stays valid.
 * The serial is derived from the old certificate, so the result is the same on every run; it is saved when the
 * directory is writable.
 */
function caValidEarly(dir: string, pem: string, keyPem: string): string {
  const cert = new X509Certificate(pem);
  if (Date.parse(cert.validFrom) <= CA_NOT_BEFORE.getTime()) return pem;
  const serial = createHash('sha256').update(cert.raw).digest().subarray(0, 16);
  serial[0]! &= 0x7f;
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1] ?? 'kubernetes';
  const again = selfSignedCa({ key: keyPem, commonName: cn, serial });
  try {
    const tmp = join(dir, `.${FILES.caCert}.partial`);
    writeFileSync(tmp, again, { mode: 0o600 });
    renameSync(tmp, join(dir, FILES.caCert));
  } catch {
    /* read-only secrets (e.g. from a CI store): the re-issued certificate is used as it is made, the same each time */
  }
  return again;
}

/** `sha256:` + hex sha256 of the certificate's DER SubjectPublicKeyInfo. */
export function discoveryHashOf(caCertPem: string): string {
  const spki = createPublicKey(caCertPem).export({ type: 'spki', format: 'der' });
  return 'sha256:' + createHash('sha256').update(spki).digest('hex');
}

function randomString(n: number, alphabet: string): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

export function newToken(): string {
  const a = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return `${randomString(6, a)}.${randomString(16, a)}`;
}

/** OpenSSH `ssh-rsa` public key line from an RSA public key (RFC 4253 §6.6). */
export function sshRsaPublic(pem: string, comment: string): string {
  const jwk = createPublicKey(pem).export({ format: 'jwk' }) as { n: string; e: string };
  const str = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    return Buffer.concat([len, b]);
  };
  const mpint = (b64url: string) => {
    let b = Buffer.from(b64url, 'base64url');
    if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return str(b);
  };
  const blob = Buffer.concat([str(Buffer.from('ssh-rsa')), mpint(jwk.e), mpint(jwk.n)]);
  return `ssh-rsa ${blob.toString('base64')} ${comment}`;
}

/** Make the secrets in `dir`; false when another run made them first (theirs are kept). */
function create(dir: string, clusterName: string): boolean {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  const tmp = mkdtempSync(`${dir}.partial-`);
  try {
    chmodSync(tmp, 0o700);
    const put = (name: string, data: string) => writeFileSync(join(tmp, name), data, { mode: 0o600 });
    const ca = generateKeyPairSync('rsa', { modulusLength: 2048 });
    put(FILES.caKey, ca.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
    // Self-signed CA certificate, as kubeadm would make it (CN=kubernetes, CA:TRUE, keyCertSign), valid from
    // CA_NOT_BEFORE for 100 years.
    const serial = randomBytes(16);
    serial[0]! &= 0x7f;
    put(FILES.caCert, selfSignedCa({ key: ca.privateKey, commonName: 'kubernetes', serial }));
    put(FILES.token, newToken() + '\n');
    put(FILES.heketiAdminKey, randomString(32, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789') + '\n');
    put(FILES.metallbMemberlistKey, randomBytes(128).toString('base64') + '\n');
    const ssh = generateKeyPairSync('rsa', { modulusLength: 3072 });
    put(FILES.heketiSshKey, ssh.privateKey.export({ type: 'pkcs1', format: 'pem' }) as string);
    put(FILES.heketiSshPublicKey, sshRsaPublic(ssh.publicKey.export({ type: 'spki', format: 'pem' }) as string, `heketi@${clusterName}`) + '\n');
    try {
      renameSync(tmp, dir);
      return true;
    } catch (err) {
      // Another run made them first (two builds at once): keep theirs, so every node agrees.
      if (!existsSync(dir)) throw err;
      rmSync(tmp, { recursive: true, force: true });
      return false;
    }
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A node added after the first ones joined needs a token the master knows and that has not expired: a fresh one
 * replaces `bootstrap-token` (temporary name, then renamed; 0600). The master learns it with `kubeadm token create
 * <token>`; the caller says how, without printing it. Returns the file's path.
 */
export async function renewToken(profile: { cluster: { name: string } }, opts: SecretsOptions = {}): Promise<string> {
  await loadOrCreateSecrets(profile, opts);
  const file = join(secretsDir(profile.cluster.name, opts), FILES.token);
  const tmp = `${file}.partial`;
  writeFileSync(tmp, newToken() + '\n', { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  return file;
}

/** Keep secrets out of JSON output and console logs by accident. */
function hide(s: Secrets): Secrets {
  Object.defineProperty(s, 'toJSON', { value: () => ({ dir: s.dir, secrets: 'redacted' }), enumerable: false });
  Object.defineProperty(s, inspect.custom, { value: () => `Secrets { dir: ${JSON.stringify(s.dir)}, [redacted] }`, enumerable: false });
  return s;
}
