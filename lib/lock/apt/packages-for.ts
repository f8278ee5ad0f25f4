// Which OS packages a node of a role installs at first boot, from the profile: the same list cloud-init/firstboot.sh
// installs today (its `packages` step), plus xfsprogs where Heketi formats bricks, plus the profile's apt.packages.
// Pure; one place for the list (first boot's step should read it from here once the bundle carries it).
// Invariants: empty when first boot has no packages step; order as first boot passes them to apt-get; no duplicates.
import type { Profile } from '../../cluster/profile.ts';
import type { RolePackages } from './types.ts';

export type Role = 'master' | 'worker';

/** The packages a node of `role` asks apt for (before their dependencies). */
export function aptPackagesFor(p: Profile, role: Role): string[] {
  void role; // every role installs the same packages today; the signature keeps room for role-only ones
  const k8s = p.kubernetes.enabled;
  const gluster = p.glusterfs.enabled;
  if (!k8s && !gluster && p.apt.packages.length === 0) return [];
  const pkgs = ['curl', 'ca-certificates', 'gnupg'];
  if (k8s) pkgs.push(p.kubernetes.runtime, 'conntrack', 'socat', 'ebtables', 'ethtool', 'ipset');
  if (gluster) pkgs.push('glusterfs-server', 'glusterfs-client', 'lvm2', 'thin-provisioning-tools');
  if (gluster && p.glusterfs.heketi.enabled) pkgs.push('xfsprogs'); // Heketi makes XFS bricks on every node
  pkgs.push(...p.apt.packages);
  return [...new Set(pkgs)];
}

/** The packages of every role the profile's nodes have. */
export function aptPackagesByRole(p: Profile): RolePackages {
  const out: RolePackages = {};
  for (const role of [...new Set(p.nodes.map((n) => n.role))].sort()) out[role] = aptPackagesFor(p, role);
  return out;
}

/** What resolveAptPackages takes from the profile: the packages per role, the codename and the mirrors. */
export function aptInputsFromProfile(p: Profile): { roles: RolePackages; codename: string; mirror?: string; securityMirror?: string } {
  return { roles: aptPackagesByRole(p), codename: p.os.codename, mirror: p.apt.mirror, securityMirror: p.apt.securityMirror };
}
