// The packages apt could install: every stanza of the Packages indexes read, indexed by name and by what each
// provides. To hold a 60 000-stanza index in little memory only what choosing a candidate needs stays in memory
// (name, version, native or `all`, Multi-Arch, the names it provides) plus where the stanza lies in its index, as
// bytes in NameTables and typed columns indexed by a version id: no string or object per stanza. A version's object
// is made only when the closure asks for it; then its Provides are parsed, and the rest of its stanza (Depends,
// Filename, SHA256, …) is read back from the index (a StanzaStore) for the few packages it visits.
// Invariants: only the image's architecture and `all` are kept; a name's candidate is its highest version (ties:
// the first index read wins, as apt's equal-priority order); the same package+version+arch read twice is kept
// once; one id gives one object (the closure compares them by identity); a stanza read back without Filename,
// Size or SHA256, or with a malformed Provides, is an error naming its index and line.
import { InputError } from '../../errors.ts';
import { parseStanzas, type Stanza } from './deb822.ts';
import { PackagesScanner, type ScannedStanza } from './packages-scan.ts';
import { NameTable } from './name-table.ts';
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

/** Multi-Arch values by code (0: none); any other value is kept by id. */
const MULTI_ARCH: Array<string | undefined> = [undefined, 'same', 'foreign', 'allowed', 'no'];

/** A typed array twice as long, holding `a`. */
function doubled<T extends { readonly length: number; set(a: ArrayLike<number>): void }>(a: T, make: (len: number) => T): T {
  const b = make(a.length * 2);
  b.set(a);
  return b;
}

/** What one index read contributes to every version it lists (its origin, store and name for messages). */
interface IndexSource {
  origin: PackageVersion['origin'];
  src: PackageVersion['src'];
}

/** flags: the version is Architecture: all; its stanza has a Provides field. */
const ALL = 1;
const PROVIDES = 2;

/**
 * Lists of ids by entry (a name's versions, a provided name's providers) as linked cells in typed arrays, in the
 * order added; the same id added twice in a row is kept once.
 */
class IdLists {
  private head = new Int32Array(1024).fill(-1);
  private tail = new Int32Array(1024).fill(-1);
  private cellId = new Int32Array(1024);
  private cellNext = new Int32Array(1024);
  private cells = 0;

  add(entry: number, id: number): void {
    while (entry >= this.head.length) {
      this.head = doubled(this.head, (l) => new Int32Array(l).fill(-1));
      this.tail = doubled(this.tail, (l) => new Int32Array(l).fill(-1));
    }
    const t = this.tail[entry];
    if (t >= 0 && this.cellId[t] === id) return;
    if (this.cells === this.cellId.length) {
      this.cellId = doubled(this.cellId, (l) => new Int32Array(l));
      this.cellNext = doubled(this.cellNext, (l) => new Int32Array(l));
    }
    const c = this.cells++;
    this.cellId[c] = id;
    this.cellNext[c] = -1;
    if (t >= 0) this.cellNext[t] = c;
    else this.head[entry] = c;
    this.tail[entry] = c;
  }

  /** The first cell of an entry's list (-1: none); walk it with cellNext, read it with cellId (no allocation). */
  first(entry: number): number {
    return entry < 0 || entry >= this.head.length ? -1 : this.head[entry];
  }
  next(cell: number): number {
    return this.cellNext[cell];
  }
  id(cell: number): number {
    return this.cellId[cell];
  }

  /** The ids of an entry (-1: none), in the order added. */
  ids(entry: number): number[] {
    const out: number[] = [];
    if (entry < 0 || entry >= this.head.length) return out;
    for (let c = this.head[entry]; c >= 0; c = this.cellNext[c]) out.push(this.cellId[c]);
    return out;
  }
}

export class Universe {
  readonly architecture: string;
  // Every version read is an id; its fields live in columns (typed arrays; names in NameTables, versions in one
  // buffer), and its PackageVersion object is only made when the closure asks for it (most never are).
  private count = 0;
  private readonly names = new NameTable();
  private readonly byName = new IdLists();
  /** provided names, and for each the ids whose Provides name it (their Provide entries are parsed when asked). */
  private readonly provided = new NameTable();
  private readonly providers = new IdLists();
  private versionPool = Buffer.allocUnsafe(1 << 16);
  private versionUsed = 0;
  private nameOf = new Int32Array(1024);
  private verStart = new Uint32Array(1024);
  private verEnd = new Uint32Array(1024);
  private flags = new Uint8Array(1024);
  private multiArch = new Uint8Array(1024);
  private offsets = new Float64Array(1024);
  private lengths = new Uint32Array(1024);
  private lines = new Uint32Array(1024);
  private sourceOf = new Uint16Array(1024);
  /** Multi-Arch values that are none of MULTI_ARCH's, by id. */
  private readonly otherMultiArch = new Map<number, string>();
  private readonly sources: IndexSource[] = [];
  private readonly objects = new Map<number, PackageVersion>();
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

  /** Is version `id` the bytes b[v, vEnd) with the given `all` flag? */
  private sameVersion(id: number, b: Buffer, v: number, vEnd: number, all: number): boolean {
    if ((this.flags[id] & ALL) !== all) return false;
    const s = this.verStart[id];
    return this.verEnd[id] - s === vEnd - v && this.versionPool.compare(b, v, vEnd, s, this.verEnd[id]) === 0;
  }

  private add(st: ScannedStanza, source: number): void {
    if (st.arch === 2) return;
    const b = st.bytes;
    if (st.pkg === st.pkgEnd || st.ver === st.verEnd) throw new InputError(`${this.sources[source].src.where} line ${st.line}: a stanza without Package or Version`);
    const all = st.arch === 1 ? ALL : 0;
    const name = this.names.add(b, st.pkg, st.pkgEnd);
    for (let c = this.byName.first(name); c >= 0; c = this.byName.next(c)) if (this.sameVersion(this.byName.id(c), b, st.ver, st.verEnd, all)) return;
    const id = this.count++;
    if (id === this.offsets.length) {
      this.nameOf = doubled(this.nameOf, (l) => new Int32Array(l));
      this.verStart = doubled(this.verStart, (l) => new Uint32Array(l));
      this.verEnd = doubled(this.verEnd, (l) => new Uint32Array(l));
      this.flags = doubled(this.flags, (l) => new Uint8Array(l));
      this.multiArch = doubled(this.multiArch, (l) => new Uint8Array(l));
      this.offsets = doubled(this.offsets, (l) => new Float64Array(l));
      this.lengths = doubled(this.lengths, (l) => new Uint32Array(l));
      this.lines = doubled(this.lines, (l) => new Uint32Array(l));
      this.sourceOf = doubled(this.sourceOf, (l) => new Uint16Array(l));
    }
    const vlen = st.verEnd - st.ver;
    if (this.versionUsed + vlen > this.versionPool.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.versionPool.length * 2, this.versionUsed + vlen));
      this.versionPool.copy(grown, 0, 0, this.versionUsed);
      this.versionPool = grown;
    }
    b.copy(this.versionPool, this.versionUsed, st.ver, st.verEnd);
    this.verStart[id] = this.versionUsed;
    this.verEnd[id] = this.versionUsed += vlen;
    this.nameOf[id] = name;
    const ma = MULTI_ARCH.indexOf(st.multiArch);
    this.multiArch[id] = ma;
    if (ma < 0) this.otherMultiArch.set(id, st.multiArch!);
    this.flags[id] = all | (st.provides.length ? PROVIDES : 0);
    this.offsets[id] = st.start;
    this.lengths[id] = st.end - st.start;
    this.lines[id] = st.line;
    this.sourceOf[id] = source;
    this.byName.add(name, id);
    for (let i = 0; i < st.provides.length; i += 2) this.providers.add(this.provided.add(b, st.provides[i], st.provides[i + 1]), id);
  }

  /** The version object of an id (made once: the closure compares them by identity), its Provides parsed. */
  private pv(id: number): PackageVersion {
    let pv = this.objects.get(id);
    if (pv) return pv;
    const s = this.sources[this.sourceOf[id]];
    pv = {
      package: this.names.text(this.nameOf[id]),
      version: this.versionPool.toString('utf8', this.verStart[id], this.verEnd[id]),
      parsed: undefined,
      architecture: this.flags[id] & ALL ? 'all' : this.architecture,
      origin: s.origin,
      provides: NONE,
      multiArch: this.multiArch[id] === 255 ? this.otherMultiArch.get(id) : MULTI_ARCH[this.multiArch[id]],
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
    return this.byName.ids(this.names.find(name)).map((id) => this.pv(id));
  }

  /** The version apt would install: the highest (first read on a tie). */
  candidate(name: string): PackageVersion | undefined {
    let best: PackageVersion | undefined;
    for (const p of this.versions(name)) if (!best || compareVersions(versionOf(p), versionOf(best)) > 0) best = p;
    return best;
  }

  /** Packages whose candidate version provides `name`, with what they provide. */
  providersOf(name: string): Array<{ pv: PackageVersion; provide: Provide }> {
    const out: Array<{ pv: PackageVersion; provide: Provide }> = [];
    for (const id of this.providers.ids(this.provided.find(name))) {
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
