// The install closure, as `apt-get install --no-install-recommends` computes it for packages the image lacks:
// Depends and Pre-Depends with their version constraints, `|` alternatives, virtual packages through Provides,
// minus what the image already has at a satisfying version. No I/O of its own (visited stanzas are read back
// through the Universe).
// Invariants:
// - A dependency already met by what is installed or already chosen is left alone (an installed alternative wins).
// - Otherwise the first alternative whose candidate (highest version) meets it is chosen, then a provider of it
//   (by name order). Only candidates are ever chosen, as apt does.
// - Dependencies are followed depth first in field order; Recommends, Suggests, Conflicts and Breaks are not
//   looked at.
// - An unmet dependency throws UnsatisfiableError naming the chain from the requested package down to it.
import { UnsatisfiableError } from '../../errors.ts';
import { formatAtom, formatGroup, meetsConstraint, parseDepends, provideMeets, type DepAtom, type DepGroup } from './depends.ts';
import type { InstalledPackage } from './status.ts';
import { versionOf, type PackageVersion, type Universe } from './universe.ts';
import { compareVersions } from './version.ts';

/** Defined with the other error classes in lib/errors.ts; exported here too, beside what throws it. */
export { UnsatisfiableError };

/** Sort key of the output: package, then version (dpkg order), then architecture. */
export function compareEntries(a: { package: string; version: string; architecture: string }, b: typeof a): number {
  if (a.package !== b.package) return a.package < b.package ? -1 : 1;
  return compareVersions(a.version, b.version) || (a.architecture < b.architecture ? -1 : a.architecture > b.architecture ? 1 : 0);
}

/**
 * The packages to install so that every one of `requests` (`name` or `name=version`) is installed, given the
 * image's `installed` packages. Sorted by `compareEntries`.
 */
export function installClosure(u: Universe, installed: InstalledPackage[], requests: string[]): PackageVersion[] {
  const native = u.architecture;
  const inst = new Map<string, InstalledPackage>();
  for (const p of installed) if (p.architecture === native || p.architecture === 'all') inst.set(p.package, p);
  const instProvides = new Map<string, InstalledPackage[]>();
  for (const p of inst.values()) for (const pr of p.provides) instProvides.set(pr.name, [...(instProvides.get(pr.name) ?? []), p]);
  const sel = new Map<string, PackageVersion>();
  const selProvides = new Map<string, PackageVersion[]>();
  const depsCache = new Map<PackageVersion, DepGroup[]>();

  const archOk = (a: DepAtom, multiArch: string | undefined): boolean => {
    if (!a.arch || a.arch === 'native' || a.arch === native) return true;
    if (a.arch === 'any') return multiArch === 'allowed';
    return false;
  };

  /** Is the atom met by what will be on the system (installed, unless replaced, plus chosen)? */
  const metNow = (a: DepAtom): boolean => {
    const chosen = sel.get(a.name);
    if (chosen && archOk(a, chosen.multiArch) && meetsConstraint(a, chosen.version)) return true;
    const have = inst.get(a.name);
    if (!chosen && have && archOk(a, have.multiArch) && meetsConstraint(a, have.version)) return true;
    for (const p of instProvides.get(a.name) ?? []) if (!sel.has(p.package) && p.provides.some((pr) => provideMeets(a, pr))) return true;
    for (const p of selProvides.get(a.name) ?? []) if (p.provides.some((pr) => provideMeets(a, pr))) return true;
    return false;
  };

  /** The version to install for an atom: its own candidate, else a candidate that provides it. */
  const choose = (a: DepAtom): PackageVersion | undefined => {
    const c = u.candidate(a.name);
    if (c && archOk(a, c.multiArch) && meetsConstraint(a, c.version)) return c;
    const provs = u
      .providersOf(a.name)
      .filter((x) => provideMeets(a, x.provide))
      .map((x) => x.pv)
      .sort((x, y) => (x.package < y.package ? -1 : x.package > y.package ? 1 : 0));
    return provs[0];
  };

  const why = (g: DepGroup): string =>
    g
      .map((a) => {
        const c = u.candidate(a.name);
        const have = inst.get(a.name);
        const bits = [c ? `candidate ${c.version}` : u.providersOf(a.name).length ? 'only provided, not at that version' : 'not in the archive'];
        if (have) bits.push(`installed ${have.version}`);
        return `${a.name}: ${bits.join(', ')}`;
      })
      .join('; ');

  const deps = (pv: PackageVersion): DepGroup[] => {
    let d = depsCache.get(pv);
    if (!d) {
      const where = `${pv.src.where} line ${pv.line}: ${pv.package} ${pv.version}`;
      const rel = u.details(pv).rel;
      d = [
        ...(rel['pre-depends'] !== undefined ? parseDepends(rel['pre-depends'], `${where}: Pre-Depends`) : []),
        ...(rel.depends !== undefined ? parseDepends(rel.depends, `${where}: Depends`) : []),
      ];
      depsCache.set(pv, d);
    }
    return d;
  };

  // Depth first with an explicit stack (long chains must not overflow the JS stack).
  const install = (root: PackageVersion, chain: string[]): void => {
    const stack: Array<{ pv: PackageVersion; chain: string[]; i: number }> = [];
    const enter = (pv: PackageVersion, ch: string[]): void => {
      if (sel.get(pv.package) === pv) return;
      sel.set(pv.package, pv);
      for (const pr of pv.provides) selProvides.set(pr.name, [...(selProvides.get(pr.name) ?? []), pv]);
      stack.push({ pv, chain: ch, i: 0 });
    };
    enter(root, chain);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const groups = deps(top.pv);
      if (top.i >= groups.length) {
        stack.pop();
        continue;
      }
      const g = groups[top.i++];
      if (g.some(metNow)) continue;
      let picked: { pv: PackageVersion; atom: DepAtom } | undefined;
      for (const a of g) {
        const pv = choose(a);
        if (pv) {
          picked = { pv, atom: a };
          break;
        }
      }
      if (!picked) throw new UnsatisfiableError([...top.chain, formatGroup(g)], `no version satisfies (${why(g)})`);
      enter(picked.pv, [...top.chain, formatAtom(picked.atom)]);
    }
  };

  for (const req of requests) {
    const eq = req.indexOf('=');
    const name = eq >= 0 ? req.slice(0, eq) : req;
    const have = inst.get(name);
    if (eq >= 0) {
      const want = req.slice(eq + 1);
      const pv = u.versions(name).find((p) => compareVersions(versionOf(p), want) === 0);
      if (!pv) throw new UnsatisfiableError([req], `no such version (archive has: ${u.versions(name).map((p) => p.version).join(', ') || 'none'})`);
      if (have && compareVersions(have.version, versionOf(pv)) === 0) continue;
      install(pv, [req]);
      continue;
    }
    const c = u.candidate(name);
    if (c) {
      if (have && compareVersions(have.version, versionOf(c)) >= 0) continue; // already the newest
      install(c, [name]);
      continue;
    }
    if (have) continue; // installed, and the archive has no version of it: apt says "already the newest version"
    const provs = u.providersOf(name).map((x) => x.pv);
    if (instProvides.has(name) || selProvides.has(name)) continue; // a provider is installed or already chosen
    const names = [...new Set(provs.map((p) => p.package))].sort();
    if (names.length === 1) {
      install(provs.find((p) => p.package === names[0])!, [name]);
      continue;
    }
    if (names.length > 1) throw new UnsatisfiableError([name], `a virtual package provided by ${names.join(', ')}: name one of them`);
    throw new UnsatisfiableError([name], 'no package of that name in the archive for this architecture');
  }
  return [...sel.values()].sort(compareEntries);
}
