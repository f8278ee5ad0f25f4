// The packages apt could install: every stanza of the Packages indexes read, indexed by name and by what each
// provides. To hold a 60 000-stanza index in little memory only what choosing a candidate needs stays in memory
// (name, version, native or `all`, Multi-Arch, Provides), in columns indexed by a version id, plus where the stanza
// lies in its index; a version's object is made only when the closure asks for it, and the rest of its stanza
// (Depends, Filename, SHA256, …) is read back from the index (a StanzaStore) for the few packages it visits.
// Invariants: only the image's architecture and `all` are kept; a name's candidate is its highest version (ties:
// the first index read wins, as apt's equal-priority order); the same package+version+arch read twice is kept
// once; one id gives one object (the closure compares them by identity); a stanza read back without Filename,
// Size or SHA256 is an error naming its index and line.
import { InputError } from '../../errors.ts';
import { parseStanzas, type Stanza } from './deb822.ts';
import { PackagesScanner, type ScannedStanza } from './packages-scan.ts';
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

const NONE: Provide[] = [];

/** One copy of the few values most stanzas repeat (Multi-Arch). */
const interned = new Map<string, string>();
function intern(v: string | undefined): string | undefined {
  if (v === undefined || v.length > 16) return v;
  let x = interned.get(v);
  if (x === undefined) interned.set(v, (x = v));
  return x;
}

/** A typed array twice as long, holding `a`. */
function doubled<T extends { readonly length: number; set(a: ArrayLike<number>): void }>(a: T, make: (len: number) => T): T {
  const b = make(a.length * 2);
  b.set(a);
  return b;
}

/** Add `id` to a name's entry in a name -> id | ids map (most names have one id: no array for them). */
function addId(m: Map<string, number | number[]>, name: string, id: number): void {
  const had = m.get(name);
  if (had === undefined) m.set(name, id);
  else if (typeof had === 'number') {
    if (had !== id) m.set(name, [had, id]);
  } else if (had[had.length - 1] !== id) had.push(id);
}

/** What one index read contributes to every version it lists (its origin, store and name for messages). */
interface IndexSource {
  origin: PackageVersion['origin'];
  src: PackageVersion['src'];
}

/** flags: the version is Architecture: all; its stanza has a Provides field. */
const ALL = 1;
const PROVIDES = 2;

export class Universe {
  readonly architecture: string;
  // Every version read is an id; its fields live in columns (typed arrays, and string arrays for the name and
  // version), and its PackageVersion object is only made when the closure asks for it (most never are).
  private count = 0;
  private readonly names: string[] = [];
  private readonly versionsOf: string[] = [];
  private readonly multiArchs: Array<string | undefined> = [];
  private flags = new Uint8Array(1024);
  private offsets = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private lines = new Uint32Array(1024);
  private sourceOf = new Uint16Array(1024);
  private readonly sources: IndexSource[] = [];
  private readonly objects = new Map<number, PackageVersion>();
  private readonly byName = new Map<string, number | number[]>();
  /** provided name -> the ids whose Provides name it (their Provide entries are parsed when asked for). */
  private readonly providers = new Map<string, number | number[]>();
  private readonly stores = new Set<StanzaStore>();
  constructor(architecture: string) {
    this.architecture = architecture;
  }

  get size(): number {
    return this.count;
  }

  /** A scanner that adds the stanzas of one Packages index fed to it in order; `store` must hold the same bytes. */
  parser(origin: PackageVersion['origin'], where: string, store: StanzaStore): PackagesScanner {
    this.stores.add(store);
    if (this.sources.length >= 0xffff) throw new InputError(`${where}: more than ${0xffff} Packages indexes`);
    const source = this.sources.push({ origin, src: { store, where } }) - 1;
    return new PackagesScanner(this.architecture, (st) => this.add(st, source), where);
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

  private add(st: ScannedStanza, source: number): void {
    if (st.arch === 2) return;
    const name = st.package;
    const version = st.version;
    if (!name || !version) throw new InputError(`${this.sources[source].src.where} line ${st.line}: a stanza without Package or Version`);
    const all = st.arch === 1 ? ALL : 0;
    const had = this.byName.get(name);
    if (had !== undefined) {
      const same = (id: number) => this.versionsOf[id] === version && (this.flags[id] & ALL) === all;
      if (typeof had === 'number' ? same(had) : had.some(same)) return;
    }
    const id = this.count++;
    if (id === this.offsets.length) {
      this.flags = doubled(this.flags, (l) => new Uint8Array(l));
      this.offsets = doubled(this.offsets, (l) => new Float64Array(l));
      this.lengths = doubled(this.lengths, (l) => new Uint32Array(l));
      this.lines = doubled(this.lines, (l) => new Uint32Array(l));
      this.sourceOf = doubled(this.sourceOf, (l) => new Uint16Array(l));
    }
    this.names.push(name);
    this.versionsOf.push(version);
    this.multiArchs.push(intern(st.multiArch));
    this.flags[id] = all | (st.provides.length ? PROVIDES : 0);
    this.offsets[id] = st.start;
    this.lengths[id] = st.end - st.start;
    this.lines[id] = st.line;
    this.sourceOf[id] = source;
    addId(this.byName, name, id);
    for (const p of st.provides) addId(this.providers, p, id);
  }

  /** The version object of an id (made once: the closure compares them by identity), its Provides parsed. */
  private pv(id: number): PackageVersion {
    let pv = this.objects.get(id);
    if (pv) return pv;
    const s = this.sources[this.sourceOf[id]];
    pv = {
      package: this.names[id],
      version: this.versionsOf[id],
      parsed: undefined,
      architecture: this.flags[id] & ALL ? 'all' : this.architecture,
      origin: s.origin,
      provides: NONE,
      multiArch: this.multiArchs[id],
      src: s.src,
      offset: this.offsets[id],
      length: this.lengths[id],
      line: this.lines[id],
      details: undefined,
    };
    if (this.flags[id] & PROVIDES) pv.provides = parseProvides(this.readBack(pv).get('provides') ?? '', `${s.src.where} line ${pv.line}: ${pv.package}: Provides`);
    this.objects.set(id, pv);
    return pv;
  }

  /** The whole stanza of a version, read back from its index. */
  private readBack(pv: PackageVersion): Stanza {
    const [st] = parseStanzas(pv.src.store.read(pv.offset, pv.length).toString('utf8'), pv.src.where);
    if (!st || st.get('package') !== pv.package || st.get('version') !== pv.version) {
      throw new InputError(`${pv.src.where} line ${pv.line}: the index changed while it was read (${pv.package} ${pv.version} is not there any more)`);
    }
    return st;
  }

  /** Filename, Size, SHA256 and relationship fields of a version, read back from its index once. */
  details(pv: PackageVersion): Details {
    if (pv.details) return pv.details;
    const at = `${pv.src.where} line ${pv.line}`;
    const st = this.readBack(pv);
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
    return v === undefined ? [] : typeof v === 'number' ? [this.pv(v)] : v.map((id) => this.pv(id));
  }

  /** The version apt would install: the highest (first read on a tie). */
  candidate(name: string): PackageVersion | undefined {
    const v = this.byName.get(name);
    if (v === undefined) return undefined;
    if (typeof v === 'number') return this.pv(v);
    let best: PackageVersion | undefined;
    for (const id of v) {
      const p = this.pv(id);
      if (!best || compareVersions(versionOf(p), versionOf(best)) > 0) best = p;
    }
    return best;
  }

  /** Packages whose candidate version provides `name`, with what they provide. */
  providersOf(name: string): Array<{ pv: PackageVersion; provide: Provide }> {
    const ids = this.providers.get(name);
    const out: Array<{ pv: PackageVersion; provide: Provide }> = [];
    for (const id of ids === undefined ? [] : typeof ids === 'number' ? [ids] : ids) {
      const pv = this.pv(id);
      if (this.candidate(pv.package) !== pv) continue;
      for (const provide of pv.provides) if (provide.name === name) out.push({ pv, provide });
    }
    return out;
  }

  /** Release the stores (temporary files) of the indexes read. */
  close(): void {
    for (const s of this.stores) s.close?.();
    this.stores.clear();
  }
}
