// The fault suite's tools: run the CLI as a user would (`node bin/pi-image.js …` in a temp dir), check the error
// contract (exit code, at most 3 stderr lines, no stack, names what and where, nothing partial or final-named left),
// and the environments faults need: a tiny tmpfs (disk full, read-only), a pseudo-terminal of a given size.
import * as assert from 'uvu/assert';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, openSync, closeSync, readFileSync, writeFileSync, writeSync, copyFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeUbuntuLookalike, type Lookalike } from '../helpers/lookalike.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BIN = join(ROOT, 'bin', 'pi-image.js');
export const PATH_ENV = `${process.env.PATH}:/usr/sbin:/sbin`;
export const EPOCH = '1577836800';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment of a CLI run: no colours, CI-style output, a fixed build time. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', CI: '1', SOURCE_DATE_EPOCH: EPOCH, PATH: PATH_ENV, ...extra };
  delete env.FORCE_COLOR; // with NO_COLOR, node would warn on stderr
  delete env.PI_IMAGE_SECRETS;
  delete env.PI_IMAGE_MIRROR;
  return env;
}

/** Run `pi-image ARGS` in `cwd` and wait for it. */
export function cli(cwd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeout?: number; input?: string } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: cliEnv(opts.env),
    input: opts.input,
    timeout: opts.timeout ?? 120_000,
    killSignal: 'SIGKILL',
    maxBuffer: 16 << 20,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout?.toString('utf8') ?? '', stderr: r.stderr?.toString('utf8') ?? '' };
}

/** Start `pi-image ARGS` and SIGKILL it once `when` matches its stderr (progress) or after `afterMs`. */
export async function cliKilled(cwd: string, args: string[], opts: { when?: RegExp; afterMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ killed: boolean; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: cliEnv({ CI: '', ...opts.env }), stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let killed = false;
  const kill = (): void => {
    if (child.exitCode === null && !killed) {
      killed = true;
      child.kill('SIGKILL');
    }
  };
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (opts.when?.test(stderr)) kill();
  });
  const timer = opts.afterMs !== undefined ? setTimeout(kill, opts.afterMs) : undefined;
  await new Promise<void>((r) => child.on('exit', () => r()));
  clearTimeout(timer);
  return { killed, stderr };
}

export interface Expect {
  /** Exit code: 2 usage, 3 refused for safety, 1 (default) any other failure. */
  code?: number;
  /** Strings or patterns the first stderr line must hold (the file, field, offset …). */
  names?: (string | RegExp)[];
  /** Paths that must not exist afterwards (final names). */
  absent?: string[];
  /** Directories that must hold no temporary or partial file afterwards. */
  clean?: string[];
}

/** Names of leftovers: partial, temporary, staging files anywhere under `dir`. */
export function leftovers(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (/\.partial|\.tmp-|\.staging-|\.old-|\.pi-image-staging/.test(e.name)) out.push(p);
      if (e.isDirectory() && !e.isSymbolicLink()) walk(p);
    }
  };
  walk(dir);
  return out;
}

/** A plain progress or step line of lib/cli/output.ts ('write: 8.0 MiB of 96.0 MiB (8%)', '✔ …', 'warning: …'). */
const PROGRESS_LINE = /^(✔ |warning: |.+: \d+(\.\d+)? (B|KiB|MiB|GiB)\b|.+: \d+(\/\d+)?$)/;

/** The error contract of every fault case. */
export function assertClean(r: CliResult, x: Expect = {}): void {
  const detail = `exit ${r.code} ${r.signal ?? ''}\nstderr: ${r.stderr}\nstdout: ${r.stdout.slice(0, 2000)}`;
  assert.is(r.signal, null, `not killed (timed out?): ${detail}`);
  assert.is(r.code, x.code ?? 1, `exit code: ${detail}`);
  // Progress lines (CI style, every few seconds) may come first; then the error: at most 3 lines, the first named.
  const all = r.stderr.trimEnd().split('\n').filter((l) => l !== '');
  const at = all.findIndex((l) => l.startsWith('pi-image: '));
  assert.ok(at >= 0, `an error line: ${detail}`);
  for (const l of all.slice(0, at)) assert.match(l, PROGRESS_LINE, `only progress before the error: ${detail}`);
  const lines = all.slice(at);
  assert.ok(lines.length <= 3, `at most 3 error lines: ${detail}`);
  for (const l of lines) assert.not.match(l, /^\s+at .+[(:]\d+/, `no stack trace: ${detail}`);
  assert.not.match(r.stderr, /\b(TypeError|ReferenceError|Cannot read properties|undefined|\[object Object\])/, `no internal error: ${detail}`);
  for (const n of x.names ?? []) {
    if (typeof n === 'string') assert.ok(lines[0].includes(n), `first line names ${n}: ${detail}`);
    else assert.match(lines[0], n, `first line matches ${n}: ${detail}`);
  }
  for (const p of x.absent ?? []) assert.not.ok(existsSync(p), `${p} must not exist: ${detail}`);
  for (const d of x.clean ?? []) assert.equal(leftovers(d), [], `no leftovers under ${d}: ${detail}`);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A tmpfs of `kib` KiB mounted at a fresh directory (tests only: product code never mounts). */
export interface Tmpfs {
  dir: string;
  remountReadOnly(): void;
  unmount(): void;
}

export function mountTmpfs(kib: number, opts: { readOnly?: boolean } = {}): Tmpfs | string {
  const dir = tempDir('pi-image-tmpfs-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0755${opts.readOnly ? ',ro' : ''}`, 'tmpfs', dir], { env: { ...process.env, PATH: PATH_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot mount a tmpfs here: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`;
  }
  return {
    dir,
    remountReadOnly() {
      execFileSync('mount', ['-o', 'remount,ro', dir], { env: { ...process.env, PATH: PATH_ENV } });
    },
    unmount() {
      try {
        execFileSync('umount', ['-l', dir], { env: { ...process.env, PATH: PATH_ENV }, stdio: 'ignore' });
      } catch {
        /* already gone */
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Run a shell command line under a pseudo-terminal of `cols` x `rows` (`script` from util-linux); what the terminal
 *  received goes to a file, so a flood is measured, not buffered here. */
export function underPty(cmd: string, o: { cols: number; rows: number; cwd: string; timeout: number; env?: NodeJS.ProcessEnv }): { code: number | null; signal: NodeJS.Signals | null; output: Buffer; bytes: number } {
  const outFile = join(o.cwd, `pty-${process.pid}-${Date.now()}.out`);
  const fd = openSync(outFile, 'w');
  try {
    const env = cliEnv({ CI: '', NO_COLOR: '', TERM: 'xterm', ...o.env });
    delete env.CI;
    delete env.NO_COLOR;
    const r = spawnSync('script', ['-qefc', `stty cols ${o.cols} rows ${o.rows}; exec ${cmd}`, '/dev/null'], {
      cwd: o.cwd, env, stdio: ['ignore', fd, 'pipe'], timeout: o.timeout, killSignal: 'SIGKILL',
    });
    const output = readFileSync(outFile);
    return { code: r.status, signal: r.signal, output: output.subarray(0, 1 << 20), bytes: output.length };
  } finally {
    closeSync(fd);
    rmSync(outFile, { force: true });
  }
}

/** A profile (YAML text) for the reference cluster with `edit` applied to its text. */
export function referenceProfile(edit: (text: string) => string = (t) => t): string {
  return edit(readFileSync(join(ROOT, 'profiles', 'yarpi4.yaml'), 'utf8'));
}

/** A work directory with a profile, a secrets dir and a lookalike base image (shared by a test file's cases). */
export interface Workspace {
  dir: string;
  look: Lookalike;
  profile: string;
  secrets: string;
  cache: string;
}

export async function workspace(prefix: string): Promise<Workspace> {
  const dir = tempDir(prefix);
  const look = await makeUbuntuLookalike(join(dir, 'base'), { variant: 'late2019', bootMiB: 40, rootMiB: 40, bulkBytes: 256 * 1024 });
  const profile = join(dir, 'pi-image.yaml');
  writeFileSync(profile, referenceProfile());
  return { dir, look, profile, secrets: join(dir, 'secrets'), cache: join(dir, 'cache') };
}

/** A copy of the base image to damage, in its own directory. */
export function copyImage(w: Workspace, name: string): string {
  const d = join(w.dir, 'img', name);
  mkdirSync(d, { recursive: true });
  const p = join(d, 'disk.img');
  copyFileSync(w.look.img, p);
  return p;
}

/** Bytes at `offset` in `file` replaced by `bytes`. */
export function patch(file: string, offset: number, bytes: Buffer | number[]): void {
  const b = Buffer.from(bytes as Buffer);
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, b, 0, b.length, offset);
  } finally {
    closeSync(fd);
  }
}

export const isDir = (p: string): boolean => existsSync(p) && lstatSync(p).isDirectory();
