// The lock's package identity and the control fields it keeps, apart from lockfile.ts so that what reads a lock's
// packages on the build's lanes (bundle.ts, apt/bundle-repo.ts) does not load the YAML codec into every lane.
import type { LockPackage } from './lockfile.ts';

/** The Packages fields a lock entry may carry, in the order they are written (what apt needs to install it from the bundle). */
export const CONTROL_FIELDS = ['Essential', 'Multi-Arch', 'Pre-Depends', 'Depends', 'Provides', 'Conflicts', 'Breaks', 'Replaces'];

/** The id of a package entry in roles lists. */
export const packageId = (p: Pick<LockPackage, 'package' | 'version' | 'architecture'>): string => `${p.package}_${p.version}_${p.architecture}`;
