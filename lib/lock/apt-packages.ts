// The lock's OS packages: a PackageResolver over the apt resolver (lib/lock/apt/), reading the base image's own
// dpkg status, sources and keyring through the ext4 reader, with the codename and mirrors from the profile (data,
// not code), and the package requests the lock records so `build` can tell a changed apt.packages.
// Invariants: the .debs are not downloaded here (the lock pins the sha256 that the verified Packages index gives;
// `lock --fetch` and `build` fetch them into the blob store, checked); every role gets a list, empty or not.
import type { Profile } from '../cluster/profile.ts';
import { FileIO } from '../image/io.ts';
import type { OnProgress } from '../progress.ts';
import { resolveImage } from '../source/resolve.ts';
import { resolveAptPackages } from './apt/resolve.ts';
import { aptInputsFromProfile, aptPackagesByRole } from './apt/packages-for.ts';
import { rootFsOfImage } from './platform.ts';
import { ROLES, packageId, type LockPackage, type LockRequest, type PackageResolver, type Role } from './lockfile.ts';

/** Package names per role (every role present), as the lock asks the resolver for them. */
export function packageNamesByRole(p: Profile): Record<Role, string[]> {
  const by = aptPackagesByRole(p);
  return Object.fromEntries(ROLES.map((r) => [r, by[r] ?? []])) as Record<Role, string[]>;
}

/** One request per package name (roles merged later): what a changed apt.packages is told by. */
export function packageRequests(names: Record<Role, string[]>): LockRequest[] {
  const out: LockRequest[] = [];
  for (const r of ROLES) for (const name of names[r]) out.push({ id: `package:${name}`, key: 'apt.packages', input: name, kind: 'package', roles: [r] });
  return out;
}

export interface AptResolverOptions {
  /** The base image (a path, URL or catalog id, as `build --image` takes). */
  image: string;
  profile: Profile;
  cacheDir?: string;
  mirror?: string;
  onProgress?: OnProgress;
}

/** The apt resolver for the lock, over the base image's root filesystem. */
export function aptResolver(o: AptResolverOptions): PackageResolver {
  return async (req) => {
    const img = await (await resolveImage(o.image, { cacheDir: o.cacheDir, mirror: o.mirror, onProgress: o.onProgress })).done;
    const io = FileIO.open(img.path);
    try {
      const inputs = aptInputsFromProfile(o.profile);
      const entries = await resolveAptPackages({
        root: rootFsOfImage(io, img.entry?.boot),
        imageName: io.name,
        roles: req.roles,
        codename: inputs.codename,
        mirror: inputs.mirror,
        securityMirror: inputs.securityMirror,
        fetchDebs: false,
        cacheDir: o.cacheDir,
        onProgress: o.onProgress,
      });
      const packages: LockPackage[] = entries.map((e) => ({ package: e.package, version: e.version, architecture: e.architecture, filename: e.filename, url: e.url, sha256: e.sha256, size: e.size, control: e.control }));
      const roles = Object.fromEntries(ROLES.map((r) => [r, entries.filter((e) => e.roles.includes(r)).map(packageId)])) as Record<Role, string[]>;
      return { packages, roles };
    } finally {
      io.close();
    }
  };
}
