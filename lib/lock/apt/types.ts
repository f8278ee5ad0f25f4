// The types the apt resolver hands to the lockfile: one AptLockEntry per .deb a role installs at first boot.
// Invariants: every entry's sha256 comes from a Packages index whose own sha256 was in an InRelease whose
// signature verified with a key from the base image; entries are sorted by package, version, architecture.

/** One .deb pinned in the lock. */
export interface AptLockEntry {
  package: string;
  version: string;
  /** The .deb's architecture: the image's (arm64) or `all`. */
  architecture: string;
  /** Path of the .deb in the archive (Packages' Filename), also its path inside the bundle's local repository. */
  filename: string;
  /** Where it was found: the archive's base URI + filename. */
  url: string;
  sha256: string;
  size: number;
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
