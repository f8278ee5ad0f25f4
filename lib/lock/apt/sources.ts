// apt sources: the one-line format (sources.list, sources.list.d/*.list: `deb [opts] uri suite comp...`) and the
// deb822 format (*.sources: Types/URIs/Suites/Components/Signed-By). Pure; no I/O.
// Invariants: only `deb` entries count (deb-src and Enabled: no are skipped); a flat repository (suite ending in
// "/") has no components; Signed-By is kept as written (paths, fingerprints or an inline armored key).
import { InputError } from '../../errors.ts';
import { parseStanzas } from './deb822.ts';

export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
  /** Keyring files or fingerprints from signed-by; `inlineKey` when a .sources file carries the key itself. */
  signedBy?: string[];
  inlineKey?: string;
  /** `[trusted=yes]`: apt would not check the signature. pi-image refuses such a source for the lock. */
  trusted?: boolean;
  architectures?: string[];
  /** File and line (or stanza) it came from, for error messages. */
  origin: string;
}

const list = (v: string | undefined): string[] | undefined => (v === undefined ? undefined : v.split(/[\s,]+/).filter(Boolean));

/** Parse a one-line-format file (sources.list, *.list). */
export function parseSourcesList(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const origin = `${file} line ${i + 1}`;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)$/.exec(line);
    if (!m) throw new InputError(`${origin}: "${line.slice(0, 80)}" is not "deb [options] URI suite [components]"`);
    if (m[1] !== 'deb') return;
    const opts = new Map<string, string>();
    for (const o of (m[2] ?? '').trim().split(/\s+/).filter(Boolean)) {
      const eq = o.indexOf('=');
      if (eq <= 0) throw new InputError(`${origin}: option "${o}" is not key=value`);
      opts.set(o.slice(0, eq).toLowerCase(), o.slice(eq + 1));
    }
    const src: AptSource = { uri: m[3], suite: m[4], components: m[5].trim().split(/\s+/).filter(Boolean), origin };
    if (opts.has('signed-by')) src.signedBy = list(opts.get('signed-by'));
    if (opts.get('trusted') === 'yes') src.trusted = true;
    if (opts.has('arch')) src.architectures = list(opts.get('arch'));
    out.push(src);
  });
  return out;
}

/** Parse a deb822 .sources file. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  parseStanzas(text, file).forEach((st, i) => {
    const origin = `${file} stanza ${i + 1}`;
    if ((st.get('enabled') ?? 'yes').toLowerCase() === 'no') return;
    const types = list(st.get('types')) ?? [];
    if (!types.includes('deb')) return;
    const uris = list(st.get('uris'));
    const suites = list(st.get('suites'));
    if (!uris?.length || !suites?.length) throw new InputError(`${origin}: needs URIs and Suites`);
    const components = list(st.get('components')) ?? [];
    const signed = st.get('signed-by');
    const inline = signed?.includes('BEGIN PGP PUBLIC KEY BLOCK') ? signed.split('\n').map((l) => (l.trim() === '.' ? '' : l.trim())).join('\n').trim() : undefined;
    for (const uri of uris) {
      for (const suite of suites) {
        const src: AptSource = { uri, suite, components, origin };
        if (inline) src.inlineKey = inline;
        else if (signed) src.signedBy = list(signed);
        if ((st.get('trusted') ?? '').toLowerCase() === 'yes') src.trusted = true;
        if (st.has('architectures')) src.architectures = list(st.get('architectures'));
        out.push(src);
      }
    }
  });
  return out;
}

/** The URL of a file under a source's dists/ directory (or beside a flat repository's index). */
export function distUrl(src: Pick<AptSource, 'uri' | 'suite'>, path: string): string {
  const base = src.uri.endsWith('/') ? src.uri : `${src.uri}/`;
  if (src.suite.endsWith('/')) return `${base}${src.suite === './' ? '' : src.suite}${path}`;
  return `${base}dists/${src.suite}/${path}`;
}

/** The URL of a pool file (Packages' Filename) of a source. */
export function poolUrl(src: Pick<AptSource, 'uri' | 'suite'>, filename: string): string {
  const base = src.uri.endsWith('/') ? src.uri : `${src.uri}/`;
  const flat = src.suite.endsWith('/') && src.suite !== './' ? src.suite : '';
  return `${base}${flat}${filename.replace(/^\.\//, '')}`;
}
