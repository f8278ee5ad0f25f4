// The packages apt could install: every stanza of the Packages indexes read, kept small (the relationship fields
// as raw text, parsed on use), indexed by name and by what each provides. Pure; no I/O.
// Invariants: only the image's architecture and `all` are kept; a name's candidate is its highest version (ties:
// the first index read wins, as apt's equal-priority order); the same package+version+arch read twice is kept once.
import { InputError } from '../../errors.ts';
import { StanzaParser, type Stanza } from './deb822.ts';
import { parseProvides, type Provide } from './depends.ts';
import { compareVersions, parseVersion, type DebVersion } from './version.ts';

/** One installable version of a package, as an index lists it. */
export interface PackageVersion {
  package: string;
  version: string;
  parsed: DebVersion;
  architecture: string;
  filename: string;
  size: number;
  sha256: string;
  /** Index it came from (base URI and suite), for the URL and the lock. */
  origin: { uri: string; suite: string; flat: boolean };
  provides: Provide[];
  multiArch?: string;
  /** Raw relationship fields (lower-case names) for the closure and the bundle's Packages. */
  rel: Map<string, string>;
}

/** Fields of a Packages stanza pi-image keeps; the rest (descriptions, maintainers, tags) is dropped on read. */
export const KEPT_FIELDS = ['package', 'version', 'architecture', 'filename', 'size', 'sha256', 'multi-arch', 'depends', 'pre-depends', 'provides', 'conflicts', 'breaks', 'replaces', 'essential'];
const REL_FIELDS = ['depends', 'pre-depends', 'provides', 'conflicts', 'breaks', 'replaces', 'essential'];

export class Universe {
  readonly architecture: string;
  private readonly byName = new Map<string, PackageVersion[]>();
  private readonly providers = new Map<string, Array<{ pv: PackageVersion; provide: Provide }>>();
  private count = 0;
  constructor(architecture: string) {
    this.architecture = architecture;
  }

  get size(): number {
    return this.count;
  }

  /** Add one Packages stanza read from `where` (URL, for errors) of `origin`. */
  addStanza(st: Stanza, origin: PackageVersion['origin'], where: string, line: number): void {
    const arch = st.get('architecture');
    if (arch !== this.architecture && arch !== 'all') return;
    const at = `${where} line ${line}`;
    const name = st.get('package');
    const version = st.get('version');
    const filename = st.get('filename');
    const sha256 = st.get('sha256');
    const size = Number(st.get('size'));
    if (!name || !version || !filename) throw new InputError(`${at}: a stanza without Package, Version or Filename`);
    if (!sha256 || !/^[0-9a-f]{64}$/i.test(sha256)) throw new InputError(`${at}: ${name} ${version} has no SHA256 (the .deb could not be checked)`);
    if (!Number.isSafeInteger(size) || size < 0) throw new InputError(`${at}: ${name} ${version}: Size "${st.get('size')}" is not a byte count`);
    const list = this.byName.get(name);
    if (list?.some((p) => p.version === version && p.architecture === arch)) return;
    const rel = new Map<string, string>();
    for (const f of REL_FIELDS) {
      const v = st.get(f);
      if (v !== undefined) rel.set(f, v);
    }
    const pv: PackageVersion = {
      package: name,
      version,
      parsed: parseVersion(version, `${at}: ${name}: Version`),
      architecture: arch,
      filename,
      size,
      sha256: sha256.toLowerCase(),
      origin,
      provides: rel.has('provides') ? parseProvides(rel.get('provides')!, `${at}: ${name}: Provides`) : [],
      multiArch: st.get('multi-arch'),
      rel,
    };
    if (list) list.push(pv);
    else this.byName.set(name, [pv]);
    for (const provide of pv.provides) {
      const l = this.providers.get(provide.name);
      if (l) l.push({ pv, provide });
      else this.providers.set(provide.name, [{ pv, provide }]);
    }
    this.count++;
  }

  /** A parser that adds the stanzas of one Packages text fed to it in chunks. */
  parser(origin: PackageVersion['origin'], where: string): StanzaParser {
    return new StanzaParser((st, line) => this.addStanza(st, origin, where, line), { fields: KEPT_FIELDS, name: where });
  }

  /** Every version of a real package. */
  versions(name: string): PackageVersion[] {
    return this.byName.get(name) ?? [];
  }

  /** The version apt would install: the highest (first read on a tie). */
  candidate(name: string): PackageVersion | undefined {
    let best: PackageVersion | undefined;
    for (const p of this.byName.get(name) ?? []) if (!best || compareVersions(p.parsed, best.parsed) > 0) best = p;
    return best;
  }

  /** Packages whose candidate version provides `name`, with what they provide. */
  providersOf(name: string): Array<{ pv: PackageVersion; provide: Provide }> {
    return (this.providers.get(name) ?? []).filter((x) => this.candidate(x.pv.package) === x.pv);
  }
}
