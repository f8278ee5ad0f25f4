// The apt resolver's public surface: resolve a profile's OS packages from the base image's own data, the lock
// entry type, the per-role package list and the bundle repository writer.
export { resolveAptPackages, closeRoles, loadUniverse, effectiveSources, type ResolveAptOptions } from './resolve.ts';
export type { AptLockEntry, RolePackages } from './types.ts';
export { aptPackagesFor, aptPackagesByRole, aptInputsFromProfile, type Role } from './packages-for.ts';
export { bundlePackagesFile, bundleSha256Sums, bundleDebName } from './bundle-repo.ts';
export { writeBundleRepo, fetchDeb } from './bundle-write.ts';
export { readImageAptState, type ImageAptState, type RootFs } from './image-state.ts';
export { installClosure, UnsatisfiableError } from './closure.ts';
export { compareVersions, satisfiesVersion, parseVersion } from './version.ts';
export { Universe } from './universe.ts';
