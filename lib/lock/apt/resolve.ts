// The public entry of the apt resolver: from the base image's own dpkg status, sources and keyring, resolve the
// packages each role needs into pinned .debs, fetching and verifying InRelease, Packages and the .debs.
// Invariants: the trust chain starts in the image (its keyring); the codename's suites take the profile's mirror
// (the security suite its security mirror) and other sources keep their own URI; NotAutomatic suites (backports)
// give no candidates; a role whose closure cannot be met fails naming the role and the package chain.
import { InputError, VerifyError } from '../../errors.ts';
import type { OnProgress } from '../../progress.ts';
import { fetchRelease, fetchVerified, loadPackagesIndex, debUrl, type ArchiveOptions } from './archive.ts';
import { installClosure, compareEntries, UnsatisfiableError } from './closure.ts';
import { readImageAptState, keysForSource, type RootFs, type ImageAptState } from './image-state.ts';
import type { AptSource } from './sources.ts';
import type { AptLockEntry, RolePackages } from './types.ts';
import { Universe, type PackageVersion } from './universe.ts';

export interface ResolveAptOptions {
  /** The base image's root filesystem (the ext4 reader over its root partition). */
  root: RootFs;
  /** Name of the image in messages. */
  imageName?: string;
  /** Packages each role asks for (see aptPackagesFor). */
  roles: RolePackages;
  /** The distribution's codename (eoan): its suites (eoan, eoan-*) are the ones the mirrors replace. */
  codename?: string;
  /** Archive mirror for the codename's suites (profile apt.mirror). */
  mirror?: string;
  /** Mirror for `<codename>-security` (profile apt.securityMirror; default: mirror). */
  securityMirror?: string;
  /** Download and check every .deb (default true); false stops at the Packages sha256s. */
  fetchDebs?: boolean;
  cacheDir?: string;
  signal?: AbortSignal;
  onProgress?: OnProgress;
  /** The time InRelease's Valid-Until is checked against (default now). */
  now?: Date;
}

/** The sources to read: the image's, deduplicated, with the profile's mirrors on the codename's suites. */
export function effectiveSources(state: ImageAptState, o: Pick<ResolveAptOptions, 'codename' | 'mirror' | 'securityMirror' | 'imageName'>): AptSource[] {
  const out: AptSource[] = [];
  for (const s of state.sources) {
    if (s.architectures && !s.architectures.includes(state.architecture)) continue;
    const ours = o.codename !== undefined && (s.suite === o.codename || s.suite.startsWith(`${o.codename}-`));
    const uri = ours && o.mirror ? (s.suite.endsWith('-security') ? (o.securityMirror ?? o.mirror) : o.mirror) : s.uri;
    const src = { ...s, uri };
    const key = `${uri}|${s.suite}`;
    const prev = out.find((x) => `${x.uri}|${x.suite}` === key);
    if (prev) {
      for (const c of s.components) if (!prev.components.includes(c)) prev.components.push(c);
      continue;
    }
    out.push(src);
  }
  if (out.length === 0) {
    throw new InputError(`${o.imageName ?? 'image'}: no apt source for ${state.architecture} in /etc/apt/sources.list or sources.list.d`, 'The image must name its archive; pi-image reads suites and components from it.');
  }
  return out;
}

/** Read every source's verified indexes into one universe (closed again if one fails). */
export async function loadUniverse(root: RootFs, state: ImageAptState, sources: AptSource[], o: ArchiveOptions & { imageName?: string }): Promise<Universe> {
  const universe = new Universe(state.architecture);
  try {
    for (const src of sources) await loadSource(root, state, src, universe, o);
  } catch (err) {
    universe.close();
    throw err;
  }
  return universe;
}

/** One source: its InRelease verified with the keys apt would use for it, then its components' Packages. */
async function loadSource(root: RootFs, state: ImageAptState, src: AptSource, universe: Universe, o: ArchiveOptions & { imageName?: string }): Promise<void> {
  if (src.trusted) {
    throw new VerifyError(`${src.origin}: [trusted=yes] turns off apt's signature check`, 'pi-image only locks packages from signed archives; remove trusted=yes from that source.');
  }
  const keys = await keysForSource(root, state, src, o.imageName);
  const release = await fetchRelease(src, keys, o);
  if (release.notAutomatic) return;
  if (!src.suite.endsWith('/') && release.architectures.length && !release.architectures.includes(state.architecture)) {
    throw new InputError(`${src.uri} ${src.suite}: the suite carries no ${state.architecture} packages (Architectures: ${release.architectures.join(' ')})`);
  }
  const comps: Array<string | undefined> = src.suite.endsWith('/') ? [undefined] : src.components;
  for (const c of comps) await loadPackagesIndex(src, release, c, universe, o);
}

function toEntry(u: Universe, pv: PackageVersion, roles: string[]): AptLockEntry {
  const d = u.details(pv);
  const control: Record<string, string> = {};
  const NAMES: Record<string, string> = { 'pre-depends': 'Pre-Depends', depends: 'Depends', provides: 'Provides', conflicts: 'Conflicts', breaks: 'Breaks', replaces: 'Replaces', essential: 'Essential' };
  // A relationship field folded over lines means the same on one line (the lock keeps one-line values).
  for (const [k, v] of Object.entries(d.rel)) if (v !== undefined) control[NAMES[k] ?? k] = v.replace(/[ \t]*\n[ \t]*/g, ' ');
  if (pv.multiArch) control['Multi-Arch'] = pv.multiArch;
  return {
    package: pv.package,
    version: pv.version,
    architecture: pv.architecture,
    filename: d.filename,
    url: debUrl(pv.origin, d.filename),
    sha256: d.sha256,
    size: d.size,
    suite: pv.origin.suite,
    roles,
    control,
  };
}

/** Resolve each role's packages against the image's archive; one entry per .deb, sorted. */
export async function resolveAptPackages(o: ResolveAptOptions): Promise<AptLockEntry[]> {
  const name = o.imageName ?? 'image';
  const state = readImageAptState(o.root, name);
  const sources = effectiveSources(state, o);
  const universe = await loadUniverse(o.root, state, sources, { ...o, imageName: name });
  try {
    return await closeRoles(universe, state, o.roles, o.fetchDebs === false ? undefined : o);
  } finally {
    universe.close();
  }
}

/** The closures of every role merged into lock entries; with `fetch`, each .deb downloaded and checked. */
export async function closeRoles(universe: Universe, state: Pick<ImageAptState, 'installed'>, roles: RolePackages, fetch?: ArchiveOptions): Promise<AptLockEntry[]> {
  const byKey = new Map<string, { pv: PackageVersion; roles: Set<string> }>();
  for (const role of Object.keys(roles).sort()) {
    let set: PackageVersion[];
    try {
      set = installClosure(universe, state.installed, roles[role]);
    } catch (err) {
      if (err instanceof UnsatisfiableError) throw new UnsatisfiableError(err.chain, err.reason, `role ${role}`);
      throw err;
    }
    for (const pv of set) {
      const key = `${pv.package}|${pv.version}|${pv.architecture}`;
      const e = byKey.get(key);
      if (e) e.roles.add(role);
      else byKey.set(key, { pv, roles: new Set([role]) });
    }
  }
  const entries = [...byKey.values()].map((e) => toEntry(universe, e.pv, [...e.roles].sort())).sort(compareEntries);
  if (fetch) for (const e of entries) await fetchVerified(e.url, e.sha256, e.size, fetch);
  return entries;
}
