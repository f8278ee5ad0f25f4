// Test helper: run the pi-image CLI on a real pseudo-terminal, with util-linux's `script`, and type answers into
// it as its prompts appear (an expect in a few lines). stdin, stdout and stderr of the CLI are the pty, so the
// CLI takes its interactive paths exactly as on a user's terminal; what the terminal shows (prompts, echoed
// answers, messages) comes back as one text.
import { spawn } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const quote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

export interface PtySession {
  /** Wait until the terminal shows text matching `re` after what earlier expects consumed; returns the match. */
  expect(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Type a line (the Enter key included). */
  type(line: string): void;
  /** Wait for the CLI to exit: its exit code and everything the terminal showed. */
  done(timeoutMs?: number): Promise<{ code: number | null; screen: string }>;
  /** Everything shown so far. */
  screen(): string;
}

export function cliOnPty(args: string[], opts: { cwd: string; env?: Record<string, string | undefined> }): PtySession {
  // A sized terminal, as a user's is (a pty made by script from a non-terminal has 0 columns).
  const cmd = 'stty cols 120 rows 40; exec ' + [process.execPath, join(ROOT, 'bin', 'pi-image.js'), ...args].map(quote).join(' ');
  const env: NodeJS.ProcessEnv = { ...process.env, TERM: 'dumb', NO_COLOR: '1', ...opts.env };
  delete env.FORCE_COLOR;
  delete env.CI;
  // -q no banner, -e the child's exit code, -f flush at once, -c the command; the typescript file is /dev/null.
  const child = spawn('script', ['-qefc', cmd, '/dev/null'], { cwd: opts.cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let text = '';
  let consumed = 0;
  const waiters = new Set<() => void>();
  const onData = (d: Buffer): void => {
    text += d.toString('utf8').replace(/\r/g, '');
    for (const w of waiters) w();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return {
    expect(re, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const m = re.exec(text.slice(consumed));
          if (!m) return;
          consumed += m.index + m[0].length;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(m[0]);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`pty: no ${re} within ${timeoutMs} ms; the terminal showed:\n${text}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    type(line) {
      child.stdin.write(line + '\r');
    },
    async done(timeoutMs = 60_000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return { code, screen: text };
    },
    screen: () => text,
  };
}
