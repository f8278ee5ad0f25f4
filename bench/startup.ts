// Benchmark: start-up as a user meets it (issue 18, point 6: `--help`/`--version` and the first progress line of
// any command within 0.2 s). The compiled CLI as a child process, against `bmaptool --version` (a Python CLI of
// the same trade) timed in the same alternating rounds; and the time from spawning `pi-image build --all --json`
// to its first progress event (stdout), on a small look-alike base image made here.
// Usage: npx tsx bench/startup.ts [--rounds N]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli, machineLine, measure, median, rounds, roundsArg, ROOT } from './lib/measure.ts';
import { makeUbuntuLookalike } from '../test/helpers/lookalike.ts';

const n = roundsArg(7);
const f2 = (x: number): string => x.toFixed(2);
console.log(`startup bench: ${machineLine()}`);
const pi = cli({ launcher: true }); // as a user starts it, the launcher's check of the checkout included
mkdirSync(join(ROOT, 'bench', '.tmp'), { recursive: true });
const work = mkdtempSync(join(ROOT, 'bench', '.tmp', 'startup-'));

/** Seconds from spawn to the first line on stdout (the first --json event), and to the exit. */
function firstLine(args: string[]): Promise<{ first: number; total: number }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const secs = (): number => Number(process.hrtime.bigint() - t0) / 1e9;
    const p = spawn(pi[0]!, [...pi.slice(1), ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let first = 0;
    p.stdout.on('data', () => (first ||= secs()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve({ first, total: secs() }) : reject(new Error(`pi-image ${args[0]} exited ${code}`))));
  });
}

try {
  const base = await makeUbuntuLookalike(join(work, 'base'));
  const res = await rounds(n, [
    { name: 'pi-image --version', run: () => measure(pi[0]!, [...pi.slice(1), '--version']) },
    { name: 'pi-image build --help', run: () => measure(pi[0]!, [...pi.slice(1), 'build', '--help']) },
    { name: 'bmaptool --version', run: () => measure('bmaptool', ['--version']) },
  ]);
  const firsts: number[] = [];
  for (let r = 0; r < n; r++) {
    const out = join(work, `out-${r}`);
    const t = await firstLine(['build', '--all', '--image', base.img, '--out', out, '--cache', join(work, 'cache'), '--secrets', join(work, 'secrets'), '--json']);
    firsts.push(t.first);
    rmSync(out, { recursive: true, force: true });
    console.log(`  build --all --json ${r + 1}/${n}: first event ${f2(t.first)} s, done ${f2(t.total)} s`);
  }
  console.log('');
  for (const name of res.names) {
    const runs = res.runs[res.names.indexOf(name)]!;
    const s = runs.map((m) => m.secs);
    console.log(`  ${name.padEnd(24)} median ${f2(median(s))} s (${f2(Math.min(...s))}-${f2(Math.max(...s))} s); CPU median ${f2(median(runs.map((m) => m.cpuSecs)))} s; peak ${median(runs.map((m) => m.treeMB)).toFixed(0)} MB`);
  }
  console.log(`  build --all: first progress event median ${f2(median(firsts))} s (${f2(Math.min(...firsts))}-${f2(Math.max(...firsts))} s)   (target <= 0.2 s)`);
  console.log(`  load now ${machineLine().split('load ')[1]}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
