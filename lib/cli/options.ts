// Option checks every command gets, in one place (a yargs middleware): a number option must be a whole number
// (yargs turns `--jobs abc` into NaN) and a single-valued option may be given once (twice makes an array that no
// handler expects). A misuse is a UsageError: one line, exit 2.
import type { Argv } from 'yargs';
import { UsageError } from '../errors.ts';
import { EXIT, reportError } from './output.ts';

interface DeclaredOptions {
  number?: string[];
  string?: string[];
  boolean?: string[];
  array?: string[];
  alias?: Record<string, string[]>;
}

/** The flag as the user typed it: --kebab-case. */
const flag = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Throws a UsageError for the first option whose value does not match its declared type. */
export function checkOptions(argv: Record<string, unknown>, declared: DeclaredOptions): void {
  const arrays = new Set(declared.array ?? []);
  const seen = new Set<string>();
  const check = (keys: string[] | undefined, kind: 'number' | 'other'): void => {
    for (const key of keys ?? []) {
      if (seen.has(key) || !(key in argv) || argv[key] === undefined) continue;
      seen.add(key);
      const v = argv[key];
      if (!arrays.has(key) && Array.isArray(v)) throw new UsageError(`${flag(key)} was given ${v.length} times; give it once`);
      for (const x of Array.isArray(v) ? v : [v]) {
        if (kind === 'number' && !(typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
          throw new UsageError(`${flag(key)} ${x === null || Number.isNaN(x) ? 'needs a number' : `${String(x)}: give a whole number`}, e.g. ${flag(key)} 4`);
        }
      }
    }
  };
  check(declared.number, 'number');
  check(declared.string, 'other');
  check(declared.boolean, 'other');
}

/** A usage error: one line, a pointer to --help, exit 2. */
export function usageExit(err: UsageError, command: string | undefined, json: boolean): never {
  const more = `see pi-image ${command ? `${command} ` : ''}--help`;
  reportError(err.hint ? err : new UsageError(err.message, more), { json });
  process.exit(EXIT.USAGE);
}

/** Register checkOptions on every command (runs after each command's builder, so it sees that command's options). */
export function withOptionChecks<T>(y: Argv<T>): Argv<T> {
  const check = (argv: Record<string, unknown>, inst: unknown): void => {
    try {
      checkOptions(argv, (inst as { getOptions(): DeclaredOptions }).getOptions());
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      usageExit(err, (argv._ as unknown[]).map(String).join(' ') || undefined, argv.json === true);
    }
  };
  return y.middleware(check as never, true);
}
