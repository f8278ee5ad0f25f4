// The OS packages a node of a role installs at first boot, from the profile: one list for both sides of it. The
// lock resolves exactly these (lib/lock/apt/), and the seed hands the same list to first boot's `packages` step
// (PACKAGES in the node's cluster.env), which installs them from the bundle or the network.
// Pure.
// Invariants: empty when first boot has no packages step; order as first boot passes them to apt-get; no duplicates.
import type { Profile } from './profile.ts';

export type PackageRole = 'master' | 'worker';

/** The packages a node of `role` asks apt for (before their dependencies). */
export function aptPackagesFor(p: Profile, role: PackageRole): string[] {
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
export function aptPackagesByRole(p: Profile): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const role of [...new Set(p.nodes.map((n) => n.role))].sort()) out[role] = aptPackagesFor(p, role);
  return out;
}
