// How every benchmark times a command as a user meets it: as a child process, wall clock from spawn to exit, and
// peak memory of its whole process tree. Ours and the baseline run in alternating rounds on the same files (the
// order flips every round, so drift on this shared machine hits both), and the figure is the median and spread of
// the per-round ratios ours/baseline, never a best-of.
// Memory, two figures per run:
// - tree: the largest sum of RSS (VmRSS of /proc/PID/status; see rssKB for why not PSS) over the process and all
//   its descendants, sampled every 20 ms (children found through /proc/PID/task/TID/children). Worker threads are
//   threads of the process, so they are in it once; a child process (xz, perl) adds its own. A child with its
//   parent's name is a fork that has not exec'd yet (it shares the parent's pages): not counted. A peak shorter
//   than 20 ms can be missed; the figure is at least the largest process's peak (max1).
// - max1: the largest single process of the tree from getrusage (`/usr/bin/time -f %M`), exact but not a sum.
// Linux only (it reads /proc).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SBIN_PATH = `${process.env.PATH}:/usr/sbin:/sbin`;

export interface Measured {
  secs: number;
  /** Peak of the summed RSS of the process tree (MB, sampled). */
  treeMB: number;
  /** Largest single process of the tree (MB, getrusage). */
  max1MB: number;
  /** CPU seconds (user + system) of the whole tree, from getrusage: less sensitive than wall time to other load. */
  cpuSecs: number;
  stdout: string;
  stderr: string;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

/**
 * Resident set size (VmRSS, /proc/PID/status: the kernel's counters, read without touching the process). Not
 * smaps_rollup's Pss: that walks every mapping's page tables under the process's mmap lock, and read every 20 ms
 * it slowed the measured process itself: a `lock --fetch` (threads faulting in 1 GiB of page cache) took +0.2-0.4 s
 * of system time while sampled that way, curl (one small process) next to nothing, by hand. RSS counts pages
 * shared between the tree's processes once per process: the sum can only be higher than the tree's real use.
 */
function rssKB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0; // gone between listing and reading
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) for (const c of text.split(/\s+/)) out.push(Number(c));
    }
  } catch {
    /* exited */
  }
  return out;
}

/** Summed RSS (KB) of `pid`'s descendants, not counting `pid` itself (the /usr/bin/time wrapper). */
function treeKB(pid: number): number {
  let sum = 0;
  const todo = childrenOf(pid).map((c) => ({ pid: c, parent: pid }));
  while (todo.length) {
    const { pid: p, parent } = todo.pop()!;
    if (comm(p) === comm(parent)) continue; // forked, not yet exec'd: the parent's pages
    sum += rssKB(p);
    todo.push(...childrenOf(p).map((c) => ({ pid: c, parent: p })));
  }
  return sum;
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8');
  } catch {
    return '';
  }
}

/** Run `cmd args` to completion, timed, with the tree's peak memory; throws with its stderr when it fails. */
export function measure(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<Measured> {
  const timeFile = join(tmpdir(), `pi-image-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  return new Promise((resolve, reject) => {
    const t0 = now();
    const child = spawn('/usr/bin/time', ['-f', '%M %U %S', '-o', timeFile, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { CI: '1', ...process.env, PATH: SBIN_PATH, ...opts.env },
      cwd: opts.cwd,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let peak = 0;
    const sample = () => {
      peak = Math.max(peak, treeKB(child.pid!));
    };
    const timer = setInterval(sample, 20);
    child.on('error', reject);
    child.on('close', (code) => {
      const secs = now() - t0;
      clearInterval(timer);
      let max1 = 0;
      let cpu = 0;
      try {
        const [m, u, sy] = readFileSync(timeFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        max1 = m;
        cpu = u + sy;
      } catch {
        /* time did not write it */
      }
      rmSync(timeFile, { force: true });
      if (code !== 0) {
        reject(new Error(`${cmd} ${args.join(' ')} failed (exit ${code}):\n${stderr.slice(-3000)}`));
        return;
      }
      resolve({ secs, treeMB: Math.max(peak, max1) / 1024, max1MB: max1 / 1024, cpuSecs: cpu, stdout, stderr });
    });
  });
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export interface Side {
  name: string;
  /** Run once, in a fresh state (the side makes its own target); returns the measurement. */
  run: (round: number) => Promise<Measured>;
  /** Before each run (copy its inputs): not timed, and followed by settle(). */
  before?: (round: number) => void | Promise<void>;
  /** After each run (delete outputs, sync): not timed. */
  after?: (round: number) => void | Promise<void>;
}

/**
 * A kernel with free page reporting (a Firecracker or other virtio-balloon guest: /sys/module/page_reporting) hands
 * memory freed for 2 s back to the host, and the next write into it pays a host fault per page: here 1 GiB of dd
 * into the page cache took 0.23-0.70 s of sys right after an rm, 2.6-3.4 s after 10 s idle. So that neither side
 * meets memory the other just freed, every run starts after the same wait.
 */
const PAGE_REPORTING = existsSync('/sys/module/page_reporting');
export const SETTLE_MS = PAGE_REPORTING ? 3000 : 0;

/** Before a timed run: writeback done, and (with free page reporting) freed memory handed back. */
export async function settle(): Promise<void> {
  execFileSync('sync');
  if (SETTLE_MS) await new Promise((r) => setTimeout(r, SETTLE_MS));
}

export interface RoundsResult {
  names: string[];
  /** runs[side][round] */
  runs: Measured[][];
}

/** `rounds` rounds of every side; the order rotates each round. */
export async function rounds(n: number, sides: Side[], log = true): Promise<RoundsResult> {
  const runs: Measured[][] = sides.map(() => []);
  for (let r = 0; r < n; r++) {
    const order = sides.map((_, i) => i);
    if (r % 2 === 1) order.reverse();
    const line: string[] = [];
    for (const i of order) {
      await sides[i].before?.(r);
      await settle();
      const m = await sides[i].run(r);
      runs[i][r] = m;
      await sides[i].after?.(r);
      line.push(`${sides[i].name} ${m.secs.toFixed(2)} s (cpu ${m.cpuSecs.toFixed(2)} s) ${m.treeMB.toFixed(0)} MB`);
    }
    if (log) console.log(`  round ${r + 1}/${n} [load ${loadavg()}]: ${line.join(' | ')}`);
  }
  return { names: sides.map((s) => s.name), runs };
}

const f2 = (x: number): string => x.toFixed(2);

/** "median 0.93x (0.88-1.01x) of 5 rounds; 3.10 s vs 3.33 s": ours vs base, per-round ratios. */
export function ratioLine(res: RoundsResult, ours: string, base: string): { median: number; min: number; max: number; text: string } {
  const a = res.runs[res.names.indexOf(ours)];
  const b = res.runs[res.names.indexOf(base)];
  const ratios = a.map((m, i) => m.secs / b[i].secs);
  const med = median(ratios);
  const text =
    `${ours} / ${base}: median ${f2(med)}x (spread ${f2(Math.min(...ratios))}-${f2(Math.max(...ratios))}x over ${ratios.length} rounds; ` +
    `${f2(median(a.map((m) => m.secs)))} s vs ${f2(median(b.map((m) => m.secs)))} s median; CPU user+sys ratio median ` +
    `${f2(median(a.map((m, i) => m.cpuSecs / b[i].cpuSecs)))}x, ${f2(median(a.map((m) => m.cpuSecs)))} vs ${f2(median(b.map((m) => m.cpuSecs)))} s)`;
  return { median: med, min: Math.min(...ratios), max: Math.max(...ratios), text };
}

/** "tree peak 131 MB (max 140), largest process 120 MB": memory of one side over its rounds. */
export function memoryLine(res: RoundsResult, side: string): { treeMB: number; text: string } {
  const ms = res.runs[res.names.indexOf(side)];
  const tree = ms.map((m) => m.treeMB);
  const max1 = ms.map((m) => m.max1MB);
  return {
    treeMB: Math.max(...tree),
    text:
      `${side}: process tree peak RSS median ${median(tree).toFixed(0)} MB, max ${Math.max(...tree).toFixed(0)} MB; largest single process max ` +
      `${Math.max(...max1).toFixed(0)} MB; CPU (user+sys) median ${median(ms.map((m) => m.cpuSecs)).toFixed(2)} s`,
  };
}

export function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/**
 * A bench's header: the machine and its load, after starting from a clean page cache when the bench may (root).
 * On this kind of VM a page cache left full by earlier work made every write pay for reclaim, and the same run's
 * system time swung 0.7-2.0 s between identical rounds; dropping it once at the start, before the bench makes or
 * warms its inputs, leaves both sides of every round the same memory to write into. Nothing is dropped between
 * rounds: each round's `after` removes what it wrote (and syncs).
 */
export function startLine(name: string): string {
  execFileSync('sync');
  let dropped = 'page cache kept (not root)';
  if (process.getuid?.() === 0) {
    try {
      writeFileSync('/proc/sys/vm/drop_caches', '3');
      dropped = 'page cache dropped at the start';
    } catch {
      dropped = 'page cache kept (drop_caches not writable)';
    }
  }
  return `${name} bench: ${machineLine()}; ${dropped}${SETTLE_MS ? `; free page reporting on: each run starts ${SETTLE_MS / 1000} s after the last one's cleanup` : ''}`;
}

/** One line naming the machine and its load, for every bench's header. */
export function machineLine(): string {
  const model = cpus()[0]?.model.trim() ?? 'unknown CPU';
  let fsType = '';
  try {
    fsType = execFileSync('stat', ['-f', '-c', '%T', ROOT]).toString().trim();
  } catch {
    /* unknown */
  }
  return `${cpus().length} x ${model}, ${Math.round(Number(execFileSync('sh', ['-c', "awk '/MemTotal/ {print $2}' /proc/meminfo"]).toString()) / 1024 / 1024)} GiB RAM, bench dir on ${fsType}; load ${loadavg()}`;
}

function newest(dir: string, exts: string[]): number {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n = Math.max(n, newest(p, exts));
    else if (exts.some((x) => e.name.endsWith(x))) n = Math.max(n, statSync(p).mtimeMs);
  }
  return n;
}

/**
 * The CLI as an installed package runs it: the compiled bundle dist/cli/pi-image.js (bin/pi-image.js runs just that
 * once dist/ is fresh). Runs `npm run build` first when dist/ is older than a source, and then times the bundle
 * directly: through the launcher, a source edited while a bench runs would switch the remaining rounds to tsx
 * (seen once: a warm build at 211 MB instead of 123). benchCommit() says which tree that bundle was built from.
 * `{ launcher: true }` times bin/pi-image.js itself, its freshness check of the checkout included (start-up).
 */
export function cli(opts: { launcher?: boolean } = {}): string[] {
  const stamp = join(ROOT, 'dist', '.built');
  const fresh = () => existsSync(stamp) && Math.max(...['lib', 'bin', 'scripts'].map((d) => newest(join(ROOT, d), ['.ts', '.mjs']))) <= statSync(stamp).mtimeMs;
  if (!fresh()) {
    console.log('dist/ is stale: npm run build');
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (!fresh()) throw new Error('npm run build did not leave a fresh dist/');
  }
  console.log(`measuring ${benchCommit()}`);
  return [process.execPath, join(ROOT, opts.launcher ? 'bin' : 'dist', opts.launcher ? 'pi-image.js' : join('cli', 'pi-image.js'))];
}

/** The commit of the tree measured, and whether lib/ bin/ scripts/ differ from it ("+ local changes"). */
export function benchCommit(): string {
  try {
    const head = execFileSync('git', ['-C', ROOT, 'log', '-1', '--format=%h %s'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--', 'lib', 'bin', 'scripts'], { encoding: 'utf8' }).trim();
    return `${head}${dirty ? ' + local changes' : ''}`;
  } catch {
    return 'a tree outside git';
  }
}

/** `sync` (not timed): a side's writeback is not left for the next side to pay. */
export function sync(): void {
  execFileSync('sync');
}

/** Number of rounds from `--rounds N` (default `def`). */
export function roundsArg(def: number): number {
  const i = process.argv.indexOf('--rounds');
  const n = i >= 0 ? Number(process.argv[i + 1]) : def;
  return Number.isInteger(n) && n > 0 ? n : def;
}
