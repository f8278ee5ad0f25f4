// deb822 control stanzas (Packages, dpkg status, Release/InRelease, .sources): `Field: value` lines, continuation
// lines starting with a space or tab, stanzas separated by blank lines, `#` comment lines ignored. Pure; no I/O.
// Invariants: field names are matched case-insensitively (keys are lower-cased); a continuation line keeps its text
// after the one leading blank, joined to the field with "\n"; the streaming parser keeps only the fields asked
// for, so a 60 000-stanza Packages index never sits in memory whole.
import { InputError } from '../../errors.ts';

/** One stanza: lower-cased field name -> value (multi-line values joined with "\n"). */
export type Stanza = Map<string, string>;

const EMPTY = Buffer.alloc(0);

/**
 * Cuts bytes fed in chunks into lines: `onLine(buf, s, nl)` gets the line buf[s, nl), whose "\n" (or the input's
 * end) is at nl. Only a line cut by a chunk boundary is copied; the chunks themselves are not kept.
 */
export class LineSplitter {
  private tail: Buffer = EMPTY;
  constructor(private readonly onLine: (buf: Buffer, s: number, nl: number) => void) {}

  push(bytes: Buffer): void {
    let start = 0;
    if (this.tail.length) {
      const nl = bytes.indexOf(10);
      if (nl < 0) {
        this.tail = Buffer.concat([this.tail, bytes]);
        return;
      }
      const line = Buffer.concat([this.tail, bytes.subarray(0, nl + 1)]);
      this.tail = EMPTY;
      this.onLine(line, 0, line.length - 1);
      start = nl + 1;
    }
    for (;;) {
      const nl = bytes.indexOf(10, start);
      if (nl < 0) break;
      this.onLine(bytes, start, nl);
      start = nl + 1;
    }
    if (start < bytes.length) this.tail = Buffer.from(bytes.subarray(start)); // a copy of the cut line only
  }

  /** The input has ended: its last line, when it had no "\n". */
  end(): void {
    const rest = this.tail;
    this.tail = EMPTY;
    if (rest.length) this.onLine(rest, 0, rest.length);
  }
}

/**
 * Incremental parser: feed bytes (or text) with `push`, call `end`; each finished stanza goes to `onStanza`. It
 * works on the bytes: only the kept fields' values become strings, each its own (never a slice pinning a chunk).
 */
export class StanzaParser {
  private readonly lines = new LineSplitter((buf, s, nl) => this.lineOf(buf, s, nl));
  private cur: Stanza = new Map();
  private field: string | undefined;
  private keep = false;
  private line = 0;
  private startLine = 0;
  /** Byte offset in the input of the next line; of the current stanza; past its last line. */
  private pos = 0;
  private startOff = 0;
  private endOff = 0;
  private readonly name: string;
  private readonly fields?: Set<string>;
  private readonly reuse: boolean;
  constructor(
    /** `start`/`end`: the stanza's byte range in the input (for re-reading it later). */
    private readonly onStanza: (s: Stanza, line: number, start: number, end: number) => void,
    /** `reuse`: one Map is cleared and handed out for every stanza (the callback must not keep it). */
    opts: { fields?: Iterable<string>; name?: string; reuse?: boolean } = {},
  ) {
    this.reuse = opts.reuse ?? false;
    this.fields = opts.fields ? new Set([...opts.fields].map((f) => f.toLowerCase())) : undefined;
    if (this.fields) for (const f of this.fields) (this.byLength[f.length] ??= []).push([f, Buffer.from(f, 'latin1')]);
    this.name = opts.name ?? 'control data';
  }

  /** The kept field names by length, as bytes: a line's name is matched without making a string of it. */
  private readonly byLength: Array<Array<[string, Buffer]>> = [];

  /** The kept field whose name is buf[s, colon) (ASCII case-insensitive), if any. */
  private keptName(buf: Buffer, s: number, colon: number): string | undefined {
    const list = this.byLength[colon - s];
    if (!list) return undefined;
    next: for (const [name, bytes] of list) {
      for (let i = 0; i < bytes.length; i++) {
        const c = buf[s + i];
        if ((c >= 65 && c <= 90 ? c + 32 : c) !== bytes[i]) continue next;
      }
      return name;
    }
    return undefined;
  }

  push(chunk: Buffer | string): void {
    this.lines.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
  }

  end(): void {
    this.lines.end();
    this.flush();
  }

  /** The line buf[s, nl) whose line end (or the input's end) is at nl; it starts at byte `pos` of the input. */
  private lineOf(buf: Buffer, s: number, nl: number): void {
    const next = this.pos + (nl - s) + (nl < buf.length ? 1 : 0);
    this.onLine(buf, s, nl > s && buf[nl - 1] === 13 ? nl - 1 : nl, this.pos, next);
    this.pos = next;
  }

  private flush(): void {
    if (this.field !== undefined) this.onStanza(this.cur, this.startLine, this.startOff, this.endOff);
    if (this.reuse) this.cur.clear();
    else this.cur = new Map();
    this.field = undefined;
  }

  /** One line: bytes [s, e) of buf, without its line end; it spans input bytes [lineStart, next) with its end. */
  private onLine(buf: Buffer, s: number, e: number, lineStart: number, next: number): void {
    this.line++;
    const c = buf[s];
    if (c === 32 || c === 9) {
      let i = s;
      while (i < e && (buf[i] === 32 || buf[i] === 9)) i++;
      if (i === e) {
        this.flush();
        return;
      }
      if (this.field === undefined) throw new InputError(`${this.name} line ${this.line}: a continuation line with no field before it`);
      if (this.keep) this.cur.set(this.field, `${this.cur.get(this.field)}\n${buf.toString('utf8', s + 1, e)}`);
      this.endOff = next;
      return;
    }
    if (s === e) {
      this.flush();
      return;
    }
    if (c === 35) return; // '#'
    const colon = buf.indexOf(58, s);
    if (colon <= s || colon >= e) throw new InputError(`${this.name} line ${this.line}: "${buf.toString('utf8', s, Math.min(e, s + 60))}" is not a "Field: value" line`);
    if (this.field === undefined) {
      this.startLine = this.line;
      this.startOff = lineStart;
    }
    this.endOff = next;
    const name = this.fields ? this.keptName(buf, s, colon) : buf.toString('latin1', s, colon).toLowerCase();
    this.field = name ?? '';
    this.keep = name !== undefined;
    if (name !== undefined) {
      // Trim on the bytes: String.trim() would return a slice that keeps the untrimmed copy alive.
      let a = colon + 1;
      let b = e;
      while (a < b && (buf[a] === 32 || buf[a] === 9)) a++;
      while (b > a && (buf[b - 1] === 32 || buf[b - 1] === 9)) b--;
      this.cur.set(name, buf.toString('utf8', a, b));
    }
  }
}

/** All stanzas of a small control text. */
export function parseStanzas(text: string, name?: string): Stanza[] {
  const out: Stanza[] = [];
  const p = new StanzaParser((s) => out.push(s), { name });
  p.push(text);
  p.end();
  return out;
}

/** Write stanzas in deb822 form: fields in the given order, multi-line values indented, blank line between. */
export function writeStanzas(stanzas: Array<Array<[string, string | undefined]>>): string {
  return stanzas
    .map((fields) =>
      fields
        .filter((f): f is [string, string] => f[1] !== undefined && f[1] !== '')
        .map(([k, v]) => {
          if (/[\r]/.test(v) || !/^[A-Za-z0-9][A-Za-z0-9-]*$/.test(k)) throw new InputError(`control field ${k}: a bad name or a carriage return in the value`);
          const lines = v.split('\n');
          return `${k}: ${lines[0]}` + lines.slice(1).map((x) => `\n ${x === '' ? '.' : x}`).join('');
        })
        .join('\n') + '\n',
    )
    .join('\n');
}
