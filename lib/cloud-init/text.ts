// Safe text for cloud-init: YAML 1.1 (what PyYAML reads) with every ambiguous scalar quoted, shell quoting
// for the env file the first-boot script sources, and the template files shipped in cloud-init/.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PACKAGE_ROOT } from '../paths.ts';
import { InputError } from '../errors.ts';

/** YAML 1.1 text: `yes`, `off`, `0755`, dates and the like come out quoted, so PyYAML reads strings as strings. */
export function yaml11(value: unknown): string {
  return stringify(value, { version: '1.1', lineWidth: 0, minContentWidth: 0, aliasDuplicateObjects: false, blockQuote: 'literal' });
}

/** Several YAML documents separated by `---`. */
export function yamlDocs(docs: unknown[]): string {
  return docs.map(yaml11).join('---\n');
}

/** POSIX shell single-quoting: the value comes back as exactly one word, nothing expanded. */
export function shellQuote(s: string): string {
  if (s.includes('\0')) throw new InputError('a value for the first-boot environment holds a NUL byte', 'remove it from the profile');
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `KEY='value'` lines for a file the first-boot script sources. */
export function envFile(vars: Record<string, string | number | boolean | undefined>, header: string): string {
  const lines = [`# ${header}`];
  for (const [k, v] of Object.entries(vars)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new InputError(`${JSON.stringify(k)} is not a shell variable name (letters, digits, _)`);
    if (v === undefined) continue;
    lines.push(`${k}=${shellQuote(typeof v === 'boolean' ? (v ? '1' : '0') : String(v))}`);
  }
  return lines.join('\n') + '\n';
}

const cache = new Map<string, string>();

/** A file from the package's cloud-init/ directory. */
export function template(name: string): string {
  let t = cache.get(name);
  if (t === undefined) {
    t = readFileSync(join(PACKAGE_ROOT, 'cloud-init', name), 'utf8');
    cache.set(name, t);
  }
  return t;
}
