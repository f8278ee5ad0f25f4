// Release / InRelease fields (read from the signed text only, after the signature verified): suite, codename,
// components, architectures, dates and the SHA256 list of index files. Pure; no I/O.
// Invariants: a Release without a SHA256 list is refused (MD5/SHA1 are not trusted); paths are relative to dists/<suite>/.
import { InputError, VerifyError } from '../../errors.ts';
import { parseStanzas } from './deb822.ts';

export interface IndexFile {
  sha256: string;
  size: number;
}

export interface Release {
  suite?: string;
  codename?: string;
  components: string[];
  architectures: string[];
  date?: Date;
  validUntil?: Date;
  acquireByHash: boolean;
  /** `NotAutomatic: yes` (backports): apt gives it priority 1, so it never provides a candidate here. */
  notAutomatic: boolean;
  /** path under dists/<suite>/ -> sha256 and size. */
  files: Map<string, IndexFile>;
}

/** Parse the (verified) text of a Release file; `where` names it in errors (its URL). */
export function parseRelease(text: string, where: string): Release {
  const [st] = parseStanzas(text, where);
  if (!st) throw new InputError(`${where}: empty Release file`);
  const sums = st.get('sha256');
  if (!sums) throw new VerifyError(`${where}: no SHA256 field: the index files cannot be checked`, 'Use an archive that publishes SHA256 sums (every Debian and Ubuntu archive since 2012 does).');
  const files = new Map<string, IndexFile>();
  for (const line of sums.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const m = /^([0-9a-fA-F]{64})\s+(\d+)\s+(\S+)$/.exec(t);
    if (!m) throw new InputError(`${where}: SHA256 line "${t.slice(0, 80)}" is not "<sha256> <size> <path>"`);
    files.set(m[3], { sha256: m[1].toLowerCase(), size: Number(m[2]) });
  }
  const date = (f: string): Date | undefined => {
    const v = st.get(f);
    if (!v) return undefined;
    const d = new Date(v);
    if (Number.isNaN(d.getTime())) throw new InputError(`${where}: ${f}: "${v}" is not a date`);
    return d;
  };
  const words = (f: string): string[] => (st.get(f) ?? '').split(/\s+/).filter(Boolean);
  return {
    suite: st.get('suite'),
    codename: st.get('codename'),
    components: words('components'),
    architectures: words('architectures'),
    date: date('date'),
    validUntil: date('valid-until'),
    acquireByHash: st.get('acquire-by-hash') === 'yes',
    notAutomatic: st.get('notautomatic') === 'yes',
    files,
  };
}

/**
 * Check a Release against what was asked for: it must be for `suite` (its Suite or Codename, as apt checks, so a
 * signed Release of another suite cannot be replayed) and, when it says so, still valid at `now`.
 */
export function checkRelease(r: Release, suite: string, where: string, now: Date): void {
  if (r.suite !== suite && r.codename !== suite) {
    throw new VerifyError(`${where}: is for suite ${r.suite ?? '?'} (codename ${r.codename ?? '?'}), not ${suite}`, 'The mirror serves the wrong file; check apt.mirror.');
  }
  if (r.validUntil && r.validUntil.getTime() < now.getTime()) {
    throw new VerifyError(`${where}: expired on ${r.validUntil.toISOString()} (Valid-Until)`, 'The mirror is stale; use a current mirror (apt.mirror).');
  }
}
