// What the apt resolver takes from the profile: the packages per role (lib/cluster/packages.ts, the list first
// boot installs), the codename and the mirrors. Pure.
import type { Profile } from '../../cluster/profile.ts';
import { aptPackagesByRole, aptPackagesFor } from '../../cluster/packages.ts';
import type { RolePackages } from './types.ts';

export { aptPackagesByRole, aptPackagesFor };
export type { PackageRole as Role } from '../../cluster/packages.ts';

/** What resolveAptPackages takes from the profile: the packages per role, the codename and the mirrors. */
export function aptInputsFromProfile(p: Profile): { roles: RolePackages; codename: string; mirror?: string; securityMirror?: string } {
  return { roles: aptPackagesByRole(p), codename: p.os.codename, mirror: p.apt.mirror, securityMirror: p.apt.securityMirror };
}
