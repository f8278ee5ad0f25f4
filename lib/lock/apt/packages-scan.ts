// The first pass over a Packages index: a deb822 scanner that works on the bytes and takes from each stanza only
// what choosing a candidate needs (Package, Version, whether Architecture is the native one or `all`, Multi-Arch,
// the names it Provides) plus where the stanza lies, as bytes: a 60 000-stanza index costs no string or object
// per stanza. The rest of a stanza (Provides' versions too) is read back later by its byte range (deb822.ts
// and depends.ts parse it then, checking it). Pure; no I/O.
// Invariants: the same deb822 rules as deb822.ts's StanzaParser (field names ASCII case-insensitive, continuation
// lines, blank or blank-only lines end a stanza, `#` lines ignored, CRLF, any chunking of the input); every
// non-continuation line must be `Field: value`; values are trimmed of blanks; a stanza's byte range covers its
// first field line to the end of its last line.
import { InputError } from '../../errors.ts';
import { LineSplitter } from './deb822.ts';

/**
 * What the scanner reports for one stanza: a reused object whose fields point into `bytes` (a reused buffer), so
 * the callback must copy what it keeps. A missing field is an empty range.
 */
export interface ScannedStanza {
  bytes: Buffer;
  /** Package's value: bytes[pkg, pkgEnd). */
  pkg: number;
  pkgEnd: number;
  /** Version's value: bytes[ver, verEnd). */
  ver: number;
  verEnd: number;
  /** 0: the native architecture, 1: `all`, 2: another one or none. */
  arch: number;
  /** Multi-Arch's value, one shared string per value. */
  multiArch: string | undefined;
  /** The names in Provides (without their versions): [start, end) pairs into bytes. */
  provides: number[];
  line: number;
  start: number;
  end: number;
}

/** The Multi-Arch values there are (anything else gets a string of its own). */
const MULTI_ARCH = ['same', 'foreign', 'allowed', 'no'].map((v) => [v, Buffer.from(v)] as const);

/** Field names the scanner keeps, lower-case with their colon. */
const F_PACKAGE = Buffer.from('package:');
const F_PROVIDES = Buffer.from('provides:');
const F_VERSION = Buffer.from('version:');
const F_ARCH = Buffer.from('architecture:');
const F_MULTIARCH = Buffer.from('multi-arch:');
const ALL = Buffer.from('all');

/** Does buf[s, …) start with `name` (lower-case ASCII, with its colon), letters compared case-insensitively? */
function startsName(buf: Buffer, s: number, e: number, name: Buffer): boolean {
  if (e - s < name.length) return false;
  for (let i = 0; i < name.length; i++) {
    const c = buf[s + i];
    const n = name[i];
    if (c !== n && !(n >= 97 && n <= 122 && c === n - 32)) return false;
  }
  return true;
}

/** The kept field a line is, by its first letter then its name: 1 Package, 2 Provides, 3 Version, 4 Architecture, 5 Multi-Arch. */
function keptField(buf: Buffer, s: number, e: number): number {
  switch (buf[s] | 0x20) {
    case 0x70: // p
      return startsName(buf, s, e, F_PACKAGE) ? 1 : startsName(buf, s, e, F_PROVIDES) ? 2 : 0;
    case 0x76: // v
      return startsName(buf, s, e, F_VERSION) ? 3 : 0;
    case 0x61: // a
      return startsName(buf, s, e, F_ARCH) ? 4 : 0;
    case 0x6d: // m
      return startsName(buf, s, e, F_MULTIARCH) ? 5 : 0;
    default:
      return 0;
  }
}

const NAME_LEN = [0, F_PACKAGE.length, F_PROVIDES.length, F_VERSION.length, F_ARCH.length, F_MULTIARCH.length];

export class PackagesScanner {
  private readonly lines = new LineSplitter((buf, s, nl) => this.lineOf(buf, s, nl));
  private lineNo = 0;
  /** Byte offset in the input of the next line. */
  private pos = 0;
  /** In a stanza (a field line was seen since the last blank line). */
  private open = false;
  /** The field the last field line was (for its continuation lines): 2 Provides keeps them, -1 none yet. */
  private field = -1;
  private readonly cur: ScannedStanza = { bytes: Buffer.allocUnsafe(4096), pkg: 0, pkgEnd: 0, ver: 0, verEnd: 0, arch: 2, multiArch: undefined, provides: [], line: 0, start: 0, end: 0 };
  /** Bytes of `cur.bytes` in use. */
  private used = 0;
  private readonly native: Buffer;

  constructor(
    native: string,
    private readonly onStanza: (s: ScannedStanza) => void,
    private readonly name = 'Packages',
  ) {
    this.native = Buffer.from(native, 'latin1');
  }

  push(bytes: Buffer): void {
    this.lines.push(bytes);
  }

  end(): void {
    this.lines.end();
    this.flush();
  }

  private flush(): void {
    if (this.open) this.onStanza(this.cur);
    const c = this.cur;
    c.pkg = c.pkgEnd = c.ver = c.verEnd = 0;
    c.multiArch = undefined;
    c.provides.length = 0;
    c.arch = 2;
    this.used = 0;
    this.open = false;
    this.field = -1;
  }

  /** The line buf[s, nl) whose line end (or the input's end) is at nl. */
  private lineOf(buf: Buffer, s: number, nl: number): void {
    const lineStart = this.pos;
    this.pos += nl - s + (nl < buf.length ? 1 : 0);
    this.lineNo++;
    const e = nl > s && buf[nl - 1] === 13 ? nl - 1 : nl;
    if (s === e) {
      this.flush();
      return;
    }
    const c = buf[s];
    if (c === 32 || c === 9) {
      let i = s + 1;
      while (i < e && (buf[i] === 32 || buf[i] === 9)) i++;
      if (i === e) {
        this.flush();
        return;
      }
      if (this.field < 0) throw new InputError(`${this.name} line ${this.lineNo}: a continuation line with no field before it`);
      if (this.field === 2) this.provideNames(buf, i, e);
      this.cur.end = this.pos;
      return;
    }
    if (c === 35) return; // '#'
    const f = keptField(buf, s, e);
    if (f === 0) {
      const colon = buf.indexOf(58, s);
      if (colon <= s || colon >= e) throw new InputError(`${this.name} line ${this.lineNo}: "${buf.toString('utf8', s, Math.min(e, s + 60))}" is not a "Field: value" line`);
    }
    if (!this.open) {
      this.open = true;
      this.cur.line = this.lineNo;
      this.cur.start = lineStart;
    }
    this.cur.end = this.pos;
    this.field = f;
    if (f === 0) return;
    let a = s + NAME_LEN[f];
    let b = e;
    while (a < b && (buf[a] === 32 || buf[a] === 9)) a++;
    while (b > a && (buf[b - 1] === 32 || buf[b - 1] === 9)) b--;
    switch (f) {
      case 1:
        this.cur.pkg = this.keep(buf, a, b);
        this.cur.pkgEnd = this.used;
        break;
      case 2:
        this.cur.provides.length = 0; // a repeated field: the last one counts, as in deb822.ts
        this.provideNames(buf, a, b);
        break;
      case 3:
        this.cur.ver = this.keep(buf, a, b);
        this.cur.verEnd = this.used;
        break;
      case 4:
        this.cur.arch = bytesAre(buf, a, b, this.native) ? 0 : bytesAre(buf, a, b, ALL) ? 1 : 2;
        break;
      case 5:
        this.cur.multiArch = multiArchOf(buf, a, b);
        break;
    }
  }

  /** Copy buf[a, b) into the stanza's own bytes; returns where it starts there. */
  private keep(buf: Buffer, a: number, b: number): number {
    const at = this.used;
    if (at + (b - a) > this.cur.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.cur.bytes.length * 2, at + (b - a)));
      this.cur.bytes.copy(grown, 0, 0, at);
      this.cur.bytes = grown;
    }
    const dst = this.cur.bytes;
    for (let i = a; i < b; i++) dst[at + i - a] = buf[i]; // names are short: a loop beats copy()'s overhead
    this.used = at + (b - a);
    return at;
  }

  /** The names of a Provides list buf[a, b) (`name [(= version)], …`; a name ends at a blank, `(`, `:` or `,`). */
  private provideNames(buf: Buffer, a: number, b: number): void {
    let i = a;
    while (i < b) {
      while (i < b && (buf[i] === 32 || buf[i] === 9 || buf[i] === 44)) i++;
      const s = i;
      while (i < b && buf[i] !== 32 && buf[i] !== 9 && buf[i] !== 40 && buf[i] !== 58 && buf[i] !== 44) i++;
      if (i > s) this.cur.provides.push(this.keep(buf, s, i), this.used);
      while (i < b && buf[i] !== 44) i++;
    }
  }
}

function multiArchOf(buf: Buffer, a: number, b: number): string {
  for (const [name, bytes] of MULTI_ARCH) if (bytesAre(buf, a, b, bytes)) return name;
  return buf.toString('utf8', a, b);
}

function bytesAre(buf: Buffer, a: number, b: number, want: Buffer): boolean {
  if (b - a !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (buf[a + i] !== want[i]) return false;
  return true;
}
