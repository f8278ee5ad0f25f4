// OpenPGP for apt: keyrings as apt reads them (binary `.gpg` files holding several keys, armored `.asc`, inline
// Signed-By blocks) and the clearsigned InRelease check, through the `openpgp` library.
// Invariants: the text handed back is the signed text only (never what surrounds it); at least one signature must
// verify with a key of the keyring, and any signature by a key of the keyring that does not verify is a failure
// (as gpgv reports BADSIG); openpgp's defaults stay on (no SHA-1 signatures, no DSA, RSA of 2048 bits or more).
import * as openpgp from 'openpgp';
import { InputError, VerifyError } from '../../errors.ts';

export type PublicKey = openpgp.Key;

export interface KeyFile {
  /** Path (in the image) or label, for error messages. */
  name: string;
  data: Buffer | string;
}

function isArmored(data: Buffer | string): boolean {
  const head = (typeof data === 'string' ? data.slice(0, 200) : data.subarray(0, 200).toString('latin1')).trimStart();
  return head.startsWith('-----BEGIN PGP PUBLIC KEY BLOCK-----');
}

/** Read the keys of one keyring file (binary with any number of keys, or armored). */
export async function readKeyFile(f: KeyFile): Promise<PublicKey[]> {
  try {
    if (isArmored(f.data)) return await openpgp.readKeys({ armoredKeys: typeof f.data === 'string' ? f.data : f.data.toString('utf8') });
    const bytes = typeof f.data === 'string' ? Buffer.from(f.data, 'latin1') : f.data;
    if (bytes.length === 0) return [];
    return await openpgp.readKeys({ binaryKeys: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length) });
  } catch (err) {
    throw new InputError(
      `${f.name}: not an OpenPGP keyring apt could use: ${(err as Error).message}`,
      'apt reads binary keyrings (gpg --export) and armored .asc files; a GnuPG keybox (.kbx) is not one.',
    );
  }
}

/** All keys of several keyring files. */
export async function readKeyring(files: KeyFile[]): Promise<PublicKey[]> {
  const out: PublicKey[] = [];
  for (const f of files) out.push(...(await readKeyFile(f)));
  return out;
}

/** Fingerprints (upper-case hex) of a key and its subkeys, as Signed-By may name them. */
export function fingerprints(k: PublicKey): string[] {
  return [k.getFingerprint(), ...k.getSubkeys().map((s) => s.getFingerprint())].map((f) => f.toUpperCase());
}

/**
 * Verify a clearsigned InRelease with `keys`; return the signed text. `url` names it in errors.
 */
export async function verifyClearsigned(text: string, keys: PublicKey[], url: string): Promise<string> {
  if (!text.trimStart().startsWith('-----BEGIN PGP SIGNED MESSAGE-----')) {
    throw new VerifyError(`${url}: not a clearsigned file (no "BEGIN PGP SIGNED MESSAGE" header)`, 'The mirror answered with something else (an HTML page?); check apt.mirror.');
  }
  if (keys.length === 0) throw new VerifyError(`${url}: no trusted keys to check it with`, 'The image has no apt keyring for this source (etc/apt/trusted.gpg.d, signed-by).');
  let message: openpgp.CleartextMessage;
  try {
    message = await openpgp.readCleartextMessage({ cleartextMessage: text });
  } catch (err) {
    throw new VerifyError(`${url}: damaged clearsigned message: ${(err as Error).message}`);
  }
  const result = await openpgp.verify({ message, verificationKeys: keys });
  const known = new Set(keys.flatMap((k) => [k.getKeyID(), ...k.getSubkeys().map((s) => s.getKeyID())].map((id) => id.toHex())));
  let good = 0;
  const unknown: string[] = [];
  for (const sig of result.signatures) {
    const id = sig.keyID.toHex();
    if (!known.has(id)) {
      unknown.push(id.toUpperCase());
      continue;
    }
    try {
      await sig.verified;
      good++;
    } catch (err) {
      throw new VerifyError(`${url}: BAD signature by key ${id.toUpperCase()}: ${(err as Error).message}`, 'The file was altered or the mirror is broken; do not use it.');
    }
  }
  if (good === 0) {
    throw new VerifyError(
      `${url}: no signature by a trusted key (signed by ${unknown.join(', ') || 'nobody'})`,
      "The image's keyring does not hold the archive's key; add it to the image's /etc/apt/trusted.gpg.d or fix the source's signed-by.",
    );
  }
  return result.data as string;
}
