// Relationship fields of Debian control data: Depends / Pre-Depends (comma-separated groups of `|` alternatives,
// each `name[:arch] [(op version)]`) and Provides (`name [(= version)]`). Pure; no I/O.
// Invariants: `<` and `>` are read as dpkg reads them (<= and >=); `[arch]` lists and `<profile>` restrictions
// (source-package syntax) are dropped; a malformed atom is an error naming the field and the text.
import { InputError } from '../../errors.ts';
import { parseVersion, satisfiesVersion, type VersionOp } from './version.ts';

/** One alternative of a dependency: a package (maybe arch-qualified) with an optional version constraint. */
export interface DepAtom {
  name: string;
  /** `any`, `native` or an architecture name, when qualified with `:`. */
  arch?: string;
  op?: VersionOp;
  version?: string;
}

/** A dependency: satisfied by any one of its alternatives. */
export type DepGroup = DepAtom[];

/** A Provides entry; `version` only for versioned provides (`foo (= 1.2)`). */
export interface Provide {
  name: string;
  version?: string;
}

const ATOM = /^([a-z0-9][a-z0-9+.-]*)(?::([a-z0-9-]+))?\s*(?:\(\s*(<<|<=|=|>=|>>|<|>)\s*([^\s)]+)\s*\))?$/;

function parseAtom(text: string, where: string): DepAtom {
  const t = text.replace(/\[[^\]]*\]/g, '').replace(/<[!a-z0-9. -]+>/g, '').trim();
  const m = ATOM.exec(t);
  if (!m) throw new InputError(`${where}: "${text.trim()}" is not a dependency like "name (>= 1.0)"`);
  const atom: DepAtom = { name: m[1] };
  if (m[2]) atom.arch = m[2];
  if (m[3]) {
    atom.op = (m[3] === '<' ? '<=' : m[3] === '>' ? '>=' : m[3]) as VersionOp;
    parseVersion(m[4], `${where}: ${m[1]}`);
    atom.version = m[4];
  }
  return atom;
}

/** Parse a Depends / Pre-Depends value into its groups. */
export function parseDepends(field: string, where = 'Depends'): DepGroup[] {
  const groups: DepGroup[] = [];
  for (const part of field.split(',')) {
    if (part.trim() === '') continue;
    groups.push(part.split('|').map((alt) => parseAtom(alt, where)));
  }
  return groups;
}

/** Parse a Provides value. Only `=` is allowed in a versioned provide (Debian policy 7.5). */
export function parseProvides(field: string, where = 'Provides'): Provide[] {
  const out: Provide[] = [];
  for (const part of field.split(',')) {
    if (part.trim() === '') continue;
    const a = parseAtom(part, where);
    if (a.op && a.op !== '=') throw new InputError(`${where}: "${part.trim()}": a versioned Provides must use "="`);
    out.push(a.version ? { name: a.name, version: a.version } : { name: a.name });
  }
  return out;
}

/** `name:arch (op version)` as it is written in control data. */
export function formatAtom(a: DepAtom): string {
  return `${a.name}${a.arch ? `:${a.arch}` : ''}${a.op ? ` (${a.op} ${a.version})` : ''}`;
}

export function formatGroup(g: DepGroup): string {
  return g.map(formatAtom).join(' | ');
}

/** Does version `v` meet the atom's version constraint (true when it has none)? */
export function meetsConstraint(a: DepAtom, v: string): boolean {
  return !a.op || satisfiesVersion(v, a.op, a.version!);
}

/**
 * Does a Provides entry satisfy the atom? An unversioned provide only meets an unversioned dependency; a versioned
 * one meets the constraint with its own version.
 */
export function provideMeets(a: DepAtom, p: Provide): boolean {
  if (p.name !== a.name) return false;
  if (!a.op) return true;
  return p.version !== undefined && satisfiesVersion(p.version, a.op, a.version!);
}
