// How the CLI talks to people and machines: ora progress on a TTY, quiet plain lines otherwise (CI), one JSON
// object per line with --json. Errors are one line on stderr; the stack only with --verbose. Exit codes:
// 0 done, 1 failed, 2 usage, 3 refused for safety.
// Progress never costs the work: the spinner only on a terminal that reports its width (a pty of 0 columns, as
// `script` makes, gets plain lines), each frame cut to one line of that width, redrawn by ora's timer (not per
// event); plain lines are dropped while stderr still holds unwritten output, so nothing buffers without bound.
import type { Ora } from 'ora';
import { PiImageError, SafetyError, UsageError, fsError } from '../errors.ts';
import type { ProgressEvent } from '../progress.ts';

export interface GlobalOptions {
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
}

export const EXIT = { OK: 0, FAILED: 1, USAGE: 2, REFUSED: 3 } as const;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** Width of the terminal on stderr; 0 when it is not a terminal or does not say (a pty of 0 columns). */
function stderrColumns(): number {
  const c = process.stderr.isTTY ? process.stderr.columns : 0;
  return Number.isInteger(c) && c > 0 ? c : 0;
}

/** `text` cut to fit `width` columns (one char per column is close enough for our ASCII progress texts). */
function fitText(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : width <= 1 ? chars.slice(0, Math.max(0, width)).join('') : chars.slice(0, width - 1).join('') + '…';
}

/** Plain progress lines wait while stderr holds more than this unwritten (a terminal or pipe nobody drains). */
const MAX_PENDING_STDERR = 64 * 1024;

function useColor(): boolean {
  return process.stdout.isTTY === true && !('NO_COLOR' in process.env) && process.env.TERM !== 'dumb';
}

// ora (and what it pulls in) is loaded only when a spinner can be shown, so plain runs and --help start fast.
let ora: typeof import('ora').default | undefined;

/** The output channel of one command run. */
export class Output {
  readonly json: boolean;
  readonly verbose: boolean;
  readonly quiet: boolean;
  readonly interactive: boolean;
  private spinner?: Ora;
  private phase?: string;
  private phaseStart = 0;
  private lastPlain = 0;
  private lastPlainText = '';

  constructor(opts: GlobalOptions) {
    this.json = opts.json === true;
    this.verbose = opts.verbose === true;
    this.quiet = opts.quiet === true;
    // A terminal that reports no width (a pty nobody sized) would send ora into an endless line-clearing loop.
    this.interactive = !this.json && process.stderr.isTTY === true && !process.env.CI && (process.stderr.columns ?? 0) > 0;
  }

  /** A JSON event line (only with --json). */
  event(name: string, fields: Record<string, unknown>): void {
    if (this.json) process.stdout.write(JSON.stringify({ event: name, ...fields }) + '\n');
  }

  /** Progress: a spinner with bytes, rate and ETA on a TTY; a line every few seconds otherwise; JSON with --json. */
  progress = (e: ProgressEvent): void => {
    if (this.json) {
      this.event('progress', { phase: e.phase, done: e.done, total: e.total, detail: e.detail });
      return;
    }
    if (this.quiet) return;
    const now = Date.now();
    if (e.phase !== this.phase) {
      this.phase = e.phase;
      this.phaseStart = now;
    }
    const text = describeProgress(e, now - this.phaseStart);
    const columns = stderrColumns();
    if (this.interactive && columns > 0 && ora) {
      this.showSpinner(text, columns);
      return;
    }
    if (this.spinner) this.stopSpinner();
    if ((now - this.lastPlain > 5000 || (e.total !== undefined && e.done >= e.total)) && text !== this.lastPlainText) {
      if (process.stderr.writableLength > MAX_PENDING_STDERR) return;
      this.lastPlain = now;
      this.lastPlainText = text; // a phase reporting "100%" again says nothing new
      process.stderr.write(text + '\n');
    }
  };

  /**
   * The first sign of life, before a command's heavy modules load: a JSON progress event, or the spinner on a
   * terminal. Nothing on plain non-TTY output (its first line is the pipeline's own, not a placeholder).
   */
  starting(phase: string, detail: string): void {
    if (this.json) return this.event('progress', { phase, done: 0, detail });
    if (this.quiet || !this.interactive || stderrColumns() <= 0 || !ora) return;
    if (!this.spinner) this.showSpinner(`${phase}: ${detail}`, stderrColumns());
  }

  /** The spinner with `text` (started on first use). */
  private showSpinner(text: string, columns: number): void {
    // The spinner frame is "⠋ " + text: keep it on one line, so ora's redraw clears exactly what it drew.
    const fitted = fitText(text, columns - 3);
    if (this.spinner) {
      this.spinner.text = fitted;
      return;
    }
    this.spinner = ora!({ text: fitted, stream: process.stderr, color: useColor() ? 'cyan' : undefined }).start();
    process.stderr.on('resize', this.onResize);
  }

  /** A terminal shrunk to no size mid-way: drop the spinner (ora cannot redraw in 0 columns); plain lines follow. */
  private onResize = (): void => {
    if (this.spinner && stderrColumns() === 0) this.stopSpinner();
  };

  /** A finished step: a tick on a TTY, a plain line otherwise. */
  step(text: string): void {
    if (this.json || this.quiet) return;
    if (this.spinner) {
      this.spinner.succeed(text);
      this.forgetSpinner();
    } else process.stderr.write(`✔ ${text}\n`);
  }

  stopSpinner(): void {
    this.spinner?.stop();
    this.forgetSpinner();
  }

  private forgetSpinner(): void {
    if (this.spinner) process.stderr.off('resize', this.onResize);
    this.spinner = undefined;
  }

  /** Human text on stdout (suppressed with --json). */
  print(text: string): void {
    if (!this.json) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
  }

  /** The final result: JSON with --json, else the human text given. */
  result(data: Record<string, unknown>, human?: string): void {
    this.stopSpinner();
    if (this.json) this.event('result', data);
    else if (human !== undefined) this.print(human);
  }

  warn(text: string): void {
    if (this.json) this.event('warning', { message: text });
    else if (!this.quiet) process.stderr.write(`warning: ${text}\n`);
  }

  debug(text: string): void {
    if (this.verbose && !this.json) process.stderr.write(`${text}\n`);
  }
}

function describeProgress(e: ProgressEvent, elapsedMs: number): string {
  const what = e.detail ? `${e.phase} ${e.detail}` : e.phase;
  if (e.unit === 'items') return e.total ? `${what}: ${e.done}/${e.total}` : `${what}: ${e.done}`;
  const rate = elapsedMs > 0 ? (e.done / elapsedMs) * 1000 : 0;
  let text = `${what}: ${formatBytes(e.done)}`;
  if (e.total) {
    text += ` of ${formatBytes(e.total)} (${Math.floor((e.done / e.total) * 100)}%)`;
    if (rate > 0 && e.done < e.total) text += `, ${formatBytes(rate)}/s, ETA ${Math.ceil((e.total - e.done) / rate)}s`;
  } else if (rate > 0) text += `, ${formatBytes(rate)}/s`;
  return text;
}

/** Exit code for an error: 3 for safety refusals, 2 for usage, 1 for anything else. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof SafetyError) return EXIT.REFUSED;
  if (err instanceof UsageError) return EXIT.USAGE;
  return EXIT.FAILED;
}

export { UsageError };

/** Print an error as one line (plus hint) on stderr, or as a JSON event; the stack only with --verbose. */
export function reportError(err: unknown, opts: GlobalOptions): void {
  const message = err instanceof Error ? err.message : String(err);
  const hint = err instanceof PiImageError ? err.hint : undefined;
  if (opts.json) {
    const code = err instanceof PiImageError ? err.code : 'ERROR';
    process.stdout.write(JSON.stringify({ event: 'error', code, message, hint }) + '\n');
  } else {
    process.stderr.write(`pi-image: ${message}\n`);
    if (hint) process.stderr.write(`  ${hint}\n`);
  }
  if (opts.verbose && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
}

/** Run a command handler with an Output, turning errors into one line and an exit code. */
export async function runCommand<T extends GlobalOptions>(argv: T, fn: (out: Output) => Promise<void> | void): Promise<void> {
  const out = new Output(argv);
  try {
    if (out.interactive && !ora) ora = (await import('ora')).default;
    await fn(out);
  } catch (caught) {
    out.stopSpinner();
    const err = fsError(caught);
    reportError(err, argv);
    process.exitCode = exitCodeFor(err);
  }
}
