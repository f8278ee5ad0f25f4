// The types the apt resolver hands to the lockfile: one AptLockEntry per .deb a role installs at first boot.
// Invariants: every entry's sha256 comes from a Packages index whose own sha256 was in an InRelease whose
// signature verified with a key from the base image; entries are sorted by package, version, architecture.
import type { LockPackage } from '../lockfile.ts';

/** One .deb pinned in the lock: the lock's package entry (lib/lock/lockfile.ts), with where it came from. */
export interface AptLockEntry extends LockPackage {
  /** The archive suite it came from (eoan-updates, …). */
  suite: string;
  /** The roles (master, worker) whose closure holds it, sorted. */
  roles: string[];
  /**
   * The relationship fields apt needs to install it from the bundle's local repository, as in Packages
   * (Depends, Pre-Depends, Provides, Conflicts, Breaks, Replaces, Multi-Arch, Essential); absent ones omitted.
   */
  control: Record<string, string>;
}

/** The packages each role asks for (before the closure). */
export type RolePackages = Record<string, string[]>;
