// dpkg version comparison: `[epoch:]upstream[-revision]`, compared as dpkg's verrevcmp does (lib/dpkg/version.c):
// non-digit runs by a char order where `~` sorts before everything (even the end), letters before other chars;
// digit runs numerically. Pure; no I/O.
// Invariants: compareVersions is a total order consistent with `dpkg --compare-versions`; a missing revision
// equals "0"; malformed versions are an error naming the string.
import { InputError } from '../../errors.ts';

export interface DebVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

/** Split a Debian version; throws InputError naming `where` when it is not one. */
export function parseVersion(v: string, where = 'version'): DebVersion {
  const s = v.trim();
  if (s === '' || /\s/.test(s)) throw new InputError(`${where}: "${v}" is not a Debian version (empty or has spaces)`);
  let epoch = 0;
  let rest = s;
  const colon = s.indexOf(':');
  if (colon >= 0) {
    const e = s.slice(0, colon);
    if (!/^\d+$/.test(e)) throw new InputError(`${where}: "${v}": the epoch before ":" must be a number`);
    epoch = Number(e);
    rest = s.slice(colon + 1);
  }
  const dash = rest.lastIndexOf('-');
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : '';
  if (upstream === '' || !/^[0-9]/.test(upstream)) throw new InputError(`${where}: "${v}": the upstream version must start with a digit`);
  if (!/^[A-Za-z0-9.+~:-]+$/.test(upstream) || !/^[A-Za-z0-9.+~]*$/.test(revision)) {
    throw new InputError(`${where}: "${v}" has a character dpkg does not allow in a version`);
  }
  return { epoch, upstream, revision };
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/** dpkg's order(): digits and the end 0, `~` -1, letters their code, anything else its code + 256. */
function order(c: number): number {
  if (Number.isNaN(c) || isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === 126) return -1;
  return c + 256;
}

/** dpkg's verrevcmp over one part (upstream or revision). */
function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(a.charCodeAt(i));
      const bc = order(b.charCodeAt(j));
      if (ac !== bc) return ac - bc;
      i++;
      j++;
    }
    while (a.charCodeAt(i) === 48) i++;
    while (b.charCodeAt(j) === 48) j++;
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (!firstDiff) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a.charCodeAt(i))) return 1;
    if (isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff) return firstDiff;
  }
  return 0;
}

/** <0, 0 or >0 as `a` is older than, equal to or newer than `b` (dpkg's order). */
export function compareVersions(a: string | DebVersion, b: string | DebVersion): number {
  const x = typeof a === 'string' ? parseVersion(a) : a;
  const y = typeof b === 'string' ? parseVersion(b) : b;
  if (x.epoch !== y.epoch) return x.epoch - y.epoch;
  return verrevcmp(x.upstream, y.upstream) || verrevcmp(x.revision, y.revision);
}

export type VersionOp = '<<' | '<=' | '=' | '>=' | '>>';

/** Does version `v` satisfy `op ref` (a dependency's version constraint)? */
export function satisfiesVersion(v: string, op: VersionOp, ref: string): boolean {
  const c = compareVersions(v, ref);
  switch (op) {
    case '<<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '=':
      return c === 0;
    case '>=':
      return c >= 0;
    case '>>':
      return c > 0;
  }
}
