// Runs the uvu suite through tsx and turns uvu's totals into the closing line "N passed, N failed".
// Usage: node test/run.mjs [--boot | --all] [pattern]
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const boot = args.includes('--boot');
const all = args.includes('--all');
const pattern = args.find((a) => !a.startsWith('--'));

// Unit and integration suites live in test/*/ and test/*.test.ts; the QEMU first-boot suite in test/boot/.
const runs = [];
if (!boot || all) runs.push({ dir: 'test', pattern: pattern ?? '^(?!boot/).*\\.test\\.ts$' });
if (boot || all) runs.push({ dir: 'test/boot', pattern: pattern ?? '\\.test\\.ts$' });

// No colours in the captured output (uvu's totals are parsed): uvu's --no-color, and neither NO_COLOR nor
// FORCE_COLOR passed on (uvu sets FORCE_COLOR when colouring; with NO_COLOR beside it every Node child warns).
const childEnv = { ...process.env };
delete childEnv.FORCE_COLOR;
delete childEnv.NO_COLOR;

let passed = 0;
let failed = 0;
let skipped = 0;
let exitCode = 0;
let endsLine = true; // whether what was passed on from uvu ended its last line

/** Where a run's output goes: straight to stdout, or held until `release()` (then straight on). */
function sink(live) {
  let held = live ? undefined : [];
  const write = (d) => {
    process.stdout.write(d);
    if (d.length) endsLine = d.toString().endsWith('\n');
  };
  return {
    write: (d) => (held ? held.push(d) : write(d)),
    release: () => {
      if (!held) return;
      if (!endsLine) write('\n');
      for (const d of held) write(d);
      held = undefined;
    },
  };
}

function runUvu(run, out) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(root, 'node_modules/uvu/bin.js'), run.dir, run.pattern, '-i', 'fixtures', '-i', 'helpers', '--no-color'],
      { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], env: childEnv },
    );
    let text = '';
    // Watchdogs, so a stuck test fails the run instead of holding CI to its limit: once uvu has printed its totals
    // the process gets 30 s to exit (a handle left open), and a whole run gets 40 minutes.
    let linger;
    const limit = setTimeout(() => {
      out.write(`test/run.mjs: ${run.dir} still running after 40 minutes: killed\n`);
      child.kill('SIGKILL');
    }, 40 * 60_000);
    child.stdout.on('data', (d) => {
      out.write(d);
      text += d.toString();
      if (!linger && /Duration:/.test(text)) {
        linger = setTimeout(() => {
          out.write(`test/run.mjs: ${run.dir}: uvu printed its totals but did not exit within 30 s (a handle left open): killed\n`);
          child.kill('SIGKILL');
        }, 30_000);
      }
    });
    // Done when uvu exits, not when its stdout closes: a process a test left behind (a server, a decoder) inherits
    // that pipe and would keep it open, and the closing line would never be printed. Output still in the pipe gets
    // a moment to arrive.
    child.on('exit', (code, signal) => {
      clearTimeout(limit);
      clearTimeout(linger);
      const done = () => {
        child.stdout.destroy(); // our end of the pipe: a leftover holding its end no longer keeps this process up
        resolve({ code: code ?? (signal ? 1 : 0), text });
      };
      if (child.stdout.closed) return done();
      const grace = setTimeout(done, 2000);
      child.stdout.once('close', () => {
        clearTimeout(grace);
        done();
      });
    });
  });
}

// With --all the unit suite and the QEMU suite run side by side: a TCG guest keeps about one of the two cores busy
// (node.test.ts: 303 s user + 38 s sys in 337 s) and the unit suite much of the other, so together they take about
// the time of the longer one instead of the sum. The QEMU suite's output is held back and printed after the unit
// suite's, so neither is interleaved; its [boot] progress lines (stderr) come as they happen.
const sinks = runs.map((_, i) => sink(i === 0));
const outs = runs.map((run, i) => runUvu(run, sinks[i]));
for (const [i, pending] of outs.entries()) {
  sinks[i].release();
  const out = await pending;
  const total = Number(/Total:\s+(\d+)/.exec(out.text)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(out.text)?.[1] ?? NaN);
  const skip = Number(/Skipped:\s+(\d+)/.exec(out.text)?.[1] ?? 0);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    // uvu crashed before printing totals (a syntax error, an import failure): count the run as one failure.
    failed += 1;
    exitCode = 1;
    continue;
  }
  passed += ok;
  failed += total - ok; // uvu's Total counts the tests that ran: skipped ones are not in it
  skipped += skip;
  if (out.code !== 0) exitCode = 1;
}
if (!endsLine) process.stdout.write('\n');
if (skipped) console.log(`${skipped} skipped (the reasons are printed above)`);
// The last line is exactly "N passed, N failed" (CI reads it), on a line of its own.
console.log(`${passed} passed, ${failed} failed`);
// exitCode, not exit(): stdout (a pipe in CI) is flushed before the process ends.
process.exitCode = exitCode || (failed > 0 ? 1 : 0);
