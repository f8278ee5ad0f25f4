// The bundle's local apt repository, written from the lock: a `Packages` index (what apt needs to install the
// .debs: relationship fields, Filename, Size, SHA256) and a `SHA256SUMS` that first boot checks before it trusts
// the directory (cloud-init/offline-apt.sh). Pure; no I/O.
// Invariants:
// - Stanzas in lock order.
// - The .debs sit flat in the bundle's directory under the names apt gives them in its archive cache
//   (bundleDebName), so first boot can hand apt that directory as Dir::Cache::Archives and run
//   `apt-get install --no-download`.
// - The repository is a flat one (`deb [trusted=yes] file:<dir> ./`). It can be trusted because every .deb's
//   sha256 is checked on the node against SHA256SUMS before apt sees the source, and apt checks each .deb
//   against Packages' SHA256 again before dpkg gets it.
import { InputError } from '../../errors.ts';
import { writeStanzas } from './deb822.ts';
import type { AptLockEntry } from './types.ts';
import { CONTROL_FIELDS } from '../package-id.ts';

const ORDER = CONTROL_FIELDS;

/** What the repository needs of an entry (an AptLockEntry, or a lock's package entry). */
export type BundleEntry = Pick<AptLockEntry, 'package' | 'version' | 'architecture' | 'filename' | 'sha256' | 'size' | 'control'>;

/** apt's QuoteString: `%xx` for the listed characters, `%`, blanks and anything not printable ASCII. */
function quote(s: string, bad: string): string {
  let out = '';
  for (const ch of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(ch);
    out += bad.includes(c) || ch === 0x25 || ch <= 0x20 || ch >= 0x7f ? `%${ch.toString(16).padStart(2, '0')}` : c;
  }
  return out;
}

/**
 * The name apt stores a downloaded .deb under in its archive cache (pkgAcqArchive: name_version_arch.deb with
 * `_` and `:` quoted, and `.` in the architecture): the name `apt-get install --no-download` looks for.
 */
export function bundleDebName(e: Pick<AptLockEntry, 'package' | 'version' | 'architecture' | 'filename'>): string {
  if (!/\.deb$/.test(e.filename)) throw new InputError(`lock entry ${e.package} ${e.version}: filename "${e.filename}" is not a .deb`);
  const name = `${quote(e.package, '_:')}_${quote(e.version, '_:')}_${quote(e.architecture, '_:.')}.deb`;
  if (name.includes('/') || name.startsWith('.')) throw new InputError(`lock entry ${e.package} ${e.version}: makes no safe file name`);
  return name;
}

const safeFilename = bundleDebName;

/** The `Packages` text of the bundle's repository. */
export function bundlePackagesFile(entries: BundleEntry[]): string {
  return writeStanzas(
    entries.map((e) => [
      ['Package', e.package],
      ['Version', e.version],
      ['Architecture', e.architecture],
      ...ORDER.map((k): [string, string | undefined] => [k, e.control[k]]),
      ['Filename', safeFilename(e)],
      ['Size', String(e.size)],
      ['SHA256', e.sha256],
      ['Description', `${e.package} (carried by pi-image)`],
    ]),
  );
}

/** `sha256sum -c` input for the bundle: one `<sha256>  <filename>` line per .deb. */
export function bundleSha256Sums(entries: BundleEntry[]): string {
  return entries.map((e) => `${e.sha256}  ${safeFilename(e)}\n`).join('');
}
