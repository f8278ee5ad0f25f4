// What the base image says about apt, read through the user-space ext4 reader (no mount, no chroot): installed
// packages (/var/lib/dpkg/status), the native architecture, the apt sources and the keyrings they trust.
// Invariants: only files inside the image are read (absolute symlinks resolve inside it); the architecture is the
// one dpkg is installed for, else the first line of /var/lib/dpkg/arch; a source's keys are its signed-by files
// (or inline key) when it names them, else apt's defaults (/etc/apt/trusted.gpg and trusted.gpg.d/*.gpg|*.asc).
import type { Ext4Fs } from '../../image/ext4/index.ts';
import { InputError, NotFoundError } from '../../errors.ts';
import { parseDpkgStatus, nativeArchFromStatus, type InstalledPackage } from './status.ts';
import { parseSourcesList, parseDeb822Sources, type AptSource } from './sources.ts';
import { readKeyFile, fingerprints, type KeyFile, type PublicKey } from './keyring.ts';

/** The part of the ext4 reader this module uses. */
export type RootFs = Pick<Ext4Fs, 'readFile' | 'readdir' | 'stat'>;

export interface ImageAptState {
  architecture: string;
  installed: InstalledPackage[];
  sources: AptSource[];
  /** apt's default keyring files (trusted.gpg, trusted.gpg.d/*), read from the image. */
  defaultKeyFiles: KeyFile[];
}

const STATUS = '/var/lib/dpkg/status';

function tryRead(fs: RootFs, path: string): Buffer | undefined {
  try {
    if (fs.stat(path).type !== 'file') return undefined;
    return fs.readFile(path);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

function tryList(fs: RootFs, dir: string): string[] {
  try {
    return fs.readdir(dir).map((e) => e.name).sort();
  } catch (err) {
    if (err instanceof NotFoundError) return [];
    throw err;
  }
}

/** Read the image's dpkg status, architecture, sources and default keyring. `name` labels errors (the image). */
export function readImageAptState(fs: RootFs, name = 'image'): ImageAptState {
  const status = tryRead(fs, STATUS);
  if (!status) throw new InputError(`${name}: ${STATUS} is missing: not a Debian or Ubuntu root filesystem`, 'Give the image whose root partition holds dpkg.');
  const installed = parseDpkgStatus(status, `${name}:${STATUS}`);
  const archFile = tryRead(fs, '/var/lib/dpkg/arch')?.toString('utf8').split('\n')[0]?.trim();
  const architecture = nativeArchFromStatus(installed) ?? (archFile || undefined);
  if (!architecture) throw new InputError(`${name}: cannot tell the architecture: dpkg is not in ${STATUS} and /var/lib/dpkg/arch is missing`);

  const sources: AptSource[] = [];
  const main = tryRead(fs, '/etc/apt/sources.list');
  if (main) sources.push(...parseSourcesList(main.toString('utf8'), `${name}:/etc/apt/sources.list`));
  for (const f of tryList(fs, '/etc/apt/sources.list.d')) {
    const path = `/etc/apt/sources.list.d/${f}`;
    if (f.endsWith('.list')) sources.push(...parseSourcesList(tryRead(fs, path)?.toString('utf8') ?? '', `${name}:${path}`));
    else if (f.endsWith('.sources')) sources.push(...parseDeb822Sources(tryRead(fs, path)?.toString('utf8') ?? '', `${name}:${path}`));
  }

  const defaultKeyFiles: KeyFile[] = [];
  const legacy = tryRead(fs, '/etc/apt/trusted.gpg');
  if (legacy) defaultKeyFiles.push({ name: `${name}:/etc/apt/trusted.gpg`, data: legacy });
  for (const f of tryList(fs, '/etc/apt/trusted.gpg.d')) {
    if (!f.endsWith('.gpg') && !f.endsWith('.asc')) continue;
    const data = tryRead(fs, `/etc/apt/trusted.gpg.d/${f}`);
    if (data) defaultKeyFiles.push({ name: `${name}:/etc/apt/trusted.gpg.d/${f}`, data });
  }
  return { architecture, installed, sources, defaultKeyFiles };
}

/**
 * The keys apt would trust for `src`: its inline key, its signed-by files (read from the image) or the keys of the
 * default keyring whose fingerprint it names; without signed-by, the whole default keyring.
 */
export async function keysForSource(fs: RootFs, state: ImageAptState, src: AptSource, name = 'image'): Promise<PublicKey[]> {
  if (src.inlineKey) return readKeyFile({ name: `${src.origin}: Signed-By`, data: src.inlineKey });
  const defaults = async (): Promise<PublicKey[]> => (await Promise.all(state.defaultKeyFiles.map(readKeyFile))).flat();
  if (!src.signedBy?.length) return defaults();
  const keys: PublicKey[] = [];
  for (const s of src.signedBy) {
    if (s.startsWith('/')) {
      const data = tryRead(fs, s);
      if (!data) throw new InputError(`${src.origin}: signed-by ${s} is not a file in ${name}`, 'Fix the source or add the keyring file to the image.');
      keys.push(...(await readKeyFile({ name: `${name}:${s}`, data })));
    } else {
      const fp = s.replace(/!$/, '').toUpperCase();
      const match = (await defaults()).filter((k) => fingerprints(k).some((f) => f.endsWith(fp)));
      if (!match.length) throw new InputError(`${src.origin}: signed-by ${s}: no key with that fingerprint in the image's keyring`);
      keys.push(...match);
    }
  }
  return keys;
}
