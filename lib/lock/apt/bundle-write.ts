// Lay out the bundle's local apt repository in a directory: each locked .deb (from the cache, fetched and checked
// when missing) under its apt archive-cache name, then SHA256SUMS and Packages. For the build's bundle step and tests.
// Invariants: a .deb is copied only after its cached copy matched the lock's sha256; the index files are written
// under a temporary name and renamed, Packages last, so a half-written directory has no Packages and first boot
// (offline-apt.sh) refuses it.
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetchVerified, type ArchiveOptions } from './archive.ts';
import { bundleDebName, bundlePackagesFile, bundleSha256Sums } from './bundle-repo.ts';
import type { AptLockEntry } from './types.ts';

/** The cached, verified .deb of a lock entry (downloaded and checked first when the cache lacks it). */
export function fetchDeb(e: AptLockEntry, opts: ArchiveOptions): Promise<string> {
  return fetchVerified(e.url, e.sha256, e.size, opts);
}

/** Write the repository for `entries` into `dir`; returns the bytes of .debs written. */
export async function writeBundleRepo(dir: string, entries: AptLockEntry[], opts: ArchiveOptions): Promise<number> {
  mkdirSync(dir, { recursive: true });
  let bytes = 0;
  for (const e of entries) {
    const src = await fetchDeb(e, opts);
    const dest = join(dir, bundleDebName(e));
    copyFileSync(src, `${dest}.tmp`);
    renameSync(`${dest}.tmp`, dest);
    bytes += e.size;
  }
  const put = (name: string, text: string): void => {
    writeFileSync(join(dir, `${name}.tmp`), text);
    renameSync(join(dir, `${name}.tmp`), join(dir, name));
  };
  put('SHA256SUMS', bundleSha256Sums(entries));
  put('Packages', bundlePackagesFile(entries));
  return bytes;
}
