// The packages apt could install: every stanza of the Packages indexes read, indexed by name and by what each
// provides. To hold a 60 000-stanza index in little memory only what choosing a candidate needs stays in memory
// (name, version, architecture, Multi-Arch, Provides) plus where the stanza lies in its index; the rest (Depends,
// Filename, SHA256, …) is read back from the index (a StanzaStore) for the few packages the closure visits.
// Invariants: only the image's architecture and `all` are kept; a name's candidate is its highest version (ties:
// the first index read wins, as apt's equal-priority order); the same package+version+arch read twice is kept
// once; a stanza read back without Filename, Size or SHA256 is an error naming its index and line.
import { InputError } from '../../errors.ts';
import { StanzaParser, parseStanzas, type Stanza } from './deb822.ts';
import { parseProvides, type Provide } from './depends.ts';
import { compareVersions, parseVersion, type DebVersion } from './version.ts';

/** Random access to the bytes of one Packages index (decompressed), to read a stanza back. */
export interface StanzaStore {
  read(offset: number, length: number): Buffer;
  close?(): void;
}

/** An in-memory store (tests, small indexes). */
export class BufferStore implements StanzaStore {
  private parts: Buffer[] = [];
  private joined?: Buffer;
  append(b: Buffer): void {
    this.parts.push(b);
    this.joined = undefined;
  }
  read(offset: number, length: number): Buffer {
    this.joined ??= Buffer.concat(this.parts);
    return this.joined.subarray(offset, offset + length);
  }
}

/** The relationship fields of a stanza as written (undefined when absent). */
export interface Relations {
  'pre-depends'?: string;
  depends?: string;
  provides?: string;
  conflicts?: string;
  breaks?: string;
  replaces?: string;
  essential?: string;
}

/** What is read back from the index for a package version the closure visits. */
export interface Details {
  filename: string;
  size: number;
  sha256: string;
  rel: Relations;
}

/** One installable version of a package, as an index lists it. */
export interface PackageVersion {
  package: string;
  version: string;
  /** The parsed version, filled in when first compared. */
  parsed?: DebVersion;
  architecture: string;
  /** Index it came from (base URI and suite), for the URL and the lock. */
  origin: { uri: string; suite: string; flat: boolean };
  provides: Provide[];
  multiArch?: string;
  /** Where the stanza is: its index, byte range and line (for messages). */
  src: { store: StanzaStore; where: string };
  offset: number;
  length: number;
  line: number;
  details?: Details;
}

/** The parsed version of a package version (parsed once). */
export function versionOf(pv: PackageVersion): DebVersion {
  return (pv.parsed ??= parseVersion(pv.version, `${pv.src.where} line ${pv.line}: ${pv.package}: Version`));
}

/** Fields read on the first pass; the rest waits for `details`. */
const FIRST_PASS = ['package', 'version', 'architecture', 'multi-arch', 'provides'];
const NONE: Provide[] = [];

/** One copy of the few values most stanzas repeat (architecture, Multi-Arch). */
const interned = new Map<string, string>();
function intern(v: string | undefined): string | undefined {
  if (v === undefined || v.length > 16) return v;
  let x = interned.get(v);
  if (x === undefined) interned.set(v, (x = v));
  return x;
}

export class Universe {
  readonly architecture: string;
  /** name -> its one version, or its versions (most names have one: no array for them). */
  private readonly byName = new Map<string, PackageVersion | PackageVersion[]>();
  private readonly providers = new Map<string, Array<{ pv: PackageVersion; provide: Provide }>>();
  private readonly stores = new Set<StanzaStore>();
  private count = 0;
  constructor(architecture: string) {
    this.architecture = architecture;
  }

  get size(): number {
    return this.count;
  }

  /** A parser that adds the stanzas of one Packages index fed to it in order; `store` must hold the same bytes. */
  parser(origin: PackageVersion['origin'], where: string, store: StanzaStore): StanzaParser {
    this.stores.add(store);
    const src = { store, where };
    return new StanzaParser((st, line, start, end) => this.add(st, origin, src, line, start, end), { fields: FIRST_PASS, name: where, reuse: true });
  }

  /** Index a whole Packages text held in memory. */
  addText(text: string | Buffer, origin: PackageVersion['origin'], where: string): void {
    const store = new BufferStore();
    const b = typeof text === 'string' ? Buffer.from(text) : text;
    store.append(b);
    const p = this.parser(origin, where, store);
    p.push(b);
    p.end();
  }

  private add(st: Stanza, origin: PackageVersion['origin'], src: PackageVersion['src'], line: number, offset: number, end: number): void {
    const arch = st.get('architecture');
    if (arch !== this.architecture && arch !== 'all') return;
    const at = `${src.where} line ${line}`;
    const name = st.get('package');
    const version = st.get('version');
    if (!name || !version) throw new InputError(`${at}: a stanza without Package or Version`);
    const had = this.byName.get(name);
    if (had !== undefined && (Array.isArray(had) ? had.some((p) => p.version === version && p.architecture === arch) : had.version === version && had.architecture === arch)) return;
    const provides = st.get('provides');
    const pv: PackageVersion = {
      package: name,
      version,
      parsed: undefined,
      architecture: intern(arch)!,
      origin,
      provides: provides !== undefined ? parseProvides(provides, `${at}: ${name}: Provides`) : NONE,
      multiArch: intern(st.get('multi-arch')),
      src,
      offset,
      length: end - offset,
      line,
      details: undefined,
    };
    if (had === undefined) this.byName.set(name, pv);
    else if (Array.isArray(had)) had.push(pv);
    else this.byName.set(name, [had, pv]);
    for (const provide of pv.provides) {
      const l = this.providers.get(provide.name);
      if (l) l.push({ pv, provide });
      else this.providers.set(provide.name, [{ pv, provide }]);
    }
    this.count++;
  }

  /** Filename, Size, SHA256 and relationship fields of a version, read back from its index once. */
  details(pv: PackageVersion): Details {
    if (pv.details) return pv.details;
    const at = `${pv.src.where} line ${pv.line}`;
    const [st] = parseStanzas(pv.src.store.read(pv.offset, pv.length).toString('utf8'), pv.src.where);
    if (!st || st.get('package') !== pv.package || st.get('version') !== pv.version) throw new InputError(`${at}: the index changed while it was read (${pv.package} ${pv.version} is not there any more)`);
    const filename = st.get('filename');
    const sha256 = st.get('sha256');
    const size = Number(st.get('size'));
    if (!filename) throw new InputError(`${at}: ${pv.package} ${pv.version} has no Filename`);
    if (!sha256 || !/^[0-9a-f]{64}$/i.test(sha256)) throw new InputError(`${at}: ${pv.package} ${pv.version} has no SHA256 (the .deb could not be checked)`);
    if (!Number.isSafeInteger(size) || size < 0) throw new InputError(`${at}: ${pv.package} ${pv.version}: Size "${st.get('size')}" is not a byte count`);
    pv.details = {
      filename,
      size,
      sha256: sha256.toLowerCase(),
      rel: {
        'pre-depends': st.get('pre-depends'),
        depends: st.get('depends'),
        provides: st.get('provides'),
        conflicts: st.get('conflicts'),
        breaks: st.get('breaks'),
        replaces: st.get('replaces'),
        essential: st.get('essential'),
      },
    };
    return pv.details;
  }

  /** Every version of a real package. */
  versions(name: string): PackageVersion[] {
    const v = this.byName.get(name);
    return v === undefined ? [] : Array.isArray(v) ? v : [v];
  }

  /** The version apt would install: the highest (first read on a tie). */
  candidate(name: string): PackageVersion | undefined {
    const v = this.byName.get(name);
    if (v === undefined || !Array.isArray(v)) return v;
    const list = v;
    let best: PackageVersion | undefined;
    for (const p of list) if (!best || compareVersions(versionOf(p), versionOf(best)) > 0) best = p;
    return best;
  }

  /** Packages whose candidate version provides `name`, with what they provide. */
  providersOf(name: string): Array<{ pv: PackageVersion; provide: Provide }> {
    return (this.providers.get(name) ?? []).filter((x) => this.candidate(x.pv.package) === x.pv);
  }

  /** Release the stores (temporary files) of the indexes read. */
  close(): void {
    for (const s of this.stores) s.close?.();
    this.stores.clear();
  }
}
