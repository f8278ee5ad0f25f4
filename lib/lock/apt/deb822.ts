// deb822 control stanzas (Packages, dpkg status, Release/InRelease, .sources): `Field: value` lines, continuation
// lines starting with a space or tab, stanzas separated by blank lines, `#` comment lines ignored. Pure; no I/O.
// Invariants: field names are matched case-insensitively (keys are lower-cased); a continuation line keeps its text
// after the one leading blank, joined to the field with "\n"; the streaming parser keeps only the fields asked
// for, so a 60 000-stanza Packages index never sits in memory whole.
import { StringDecoder } from 'node:string_decoder';
import { InputError } from '../../errors.ts';

/** One stanza: lower-cased field name -> value (multi-line values joined with "\n"). */
export type Stanza = Map<string, string>;

/** Incremental parser: feed text or bytes with `push`, call `end`; each finished stanza goes to `onStanza`. */
export class StanzaParser {
  private decoder = new StringDecoder('utf8');
  private tail = '';
  private cur: Stanza = new Map();
  private field: string | undefined;
  private keep: boolean;
  private line = 0;
  private startLine = 0;
  private readonly name: string;
  private readonly fields?: Set<string>;
  constructor(
    private readonly onStanza: (s: Stanza, line: number) => void,
    opts: { fields?: Iterable<string>; name?: string } = {},
  ) {
    this.fields = opts.fields ? new Set([...opts.fields].map((f) => f.toLowerCase())) : undefined;
    this.keep = false;
    this.name = opts.name ?? 'control data';
  }

  push(chunk: Buffer | string): void {
    const text = this.tail + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.onLine(text.charCodeAt(nl - 1) === 13 ? text.slice(start, nl - 1) : text.slice(start, nl));
      start = nl + 1;
    }
    this.tail = text.slice(start);
  }

  end(): void {
    const rest = this.tail + this.decoder.end();
    this.tail = '';
    if (rest !== '') this.onLine(rest);
    this.flush();
  }

  private flush(): void {
    if (this.cur.size > 0) this.onStanza(this.cur, this.startLine);
    this.cur = new Map();
    this.field = undefined;
  }

  private onLine(l: string): void {
    this.line++;
    const c = l.charCodeAt(0);
    if (c === 32 || c === 9) {
      if (l.trim() === '') {
        this.flush();
        return;
      }
      if (this.field === undefined) throw new InputError(`${this.name} line ${this.line}: a continuation line with no field before it`);
      if (this.keep) this.cur.set(this.field, `${this.cur.get(this.field)}\n${l.slice(1)}`);
      return;
    }
    if (l === '') {
      this.flush();
      return;
    }
    if (c === 35) return; // '#'
    const colon = l.indexOf(':');
    if (colon <= 0) throw new InputError(`${this.name} line ${this.line}: "${l.slice(0, 60)}" is not a "Field: value" line`);
    if (this.cur.size === 0 && this.field === undefined) this.startLine = this.line;
    const name = l.slice(0, colon).toLowerCase();
    this.field = name;
    this.keep = !this.fields || this.fields.has(name);
    if (this.keep) this.cur.set(name, l.slice(colon + 1).trim());
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
