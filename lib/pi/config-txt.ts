// config.txt as the Raspberry Pi firmware reads it: conditional sections ([pi4], [all], [none] …), `include`,
// later settings winning. `resolveBootConfig` answers "which kernel, initramfs and cmdline file does a Pi 4 boot
// from these files?" — pure text logic: the caller passes a function that returns a file's text or undefined.

/** Pi models the section filters know. `pi4` is the Model 4B. */
export type PiModel = 'pi0' | 'pi0w' | 'pi02' | 'pi1' | 'pi2' | 'pi3' | 'pi3+' | 'cm3' | 'pi4' | 'pi400' | 'cm4' | 'pi5';

/** Which models each model filter matches (Raspberry Pi config.txt docs, "Conditional filters"). */
const MODEL_FILTERS: Record<string, PiModel[]> = {
  pi0: ['pi0', 'pi0w', 'pi02'],
  pi0w: ['pi0w'],
  pi02: ['pi02'],
  pi1: ['pi1'],
  pi2: ['pi2'],
  pi3: ['pi3', 'pi3+', 'cm3'],
  'pi3+': ['pi3+'],
  pi4: ['pi4', 'pi400', 'cm4'],
  pi400: ['pi400'],
  cm4: ['cm4'],
  pi5: ['pi5'],
};

export interface InitramfsSetting {
  file: string;
  /** `followkernel` or a load address such as `0x2000000`. */
  address: string;
}

export interface BootConfig {
  model: string;
  /** The kernel the firmware loads (kernel=, else the model's default). */
  kernel: string;
  /** True when `kernel=` was given, false when it is the firmware's default name. */
  kernelExplicit: boolean;
  initramfs?: InitramfsSetting;
  /** The cmdline file (cmdline=, default cmdline.txt). */
  cmdlineFile: string;
  /** The effective kernel command line: the first line of cmdlineFile, trimmed ('' when the file is missing). */
  cmdline: string;
  /** False when cmdlineFile does not exist. */
  cmdlineFound: boolean;
  arm64: boolean;
  /** Config files read, in order, then the cmdline file. */
  filesRead: string[];
  /** Included files that do not exist (the firmware skips them silently). */
  missing: string[];
  /** usercfg.txt (as spelt in the include) when config.txt includes it for this model: the place for user changes. */
  userConfigFile?: string;
  /** Every effective key=value setting after all overrides (last wins). */
  settings: Record<string, string>;
  /** Things a person should know: include loops, filters we cannot evaluate. */
  warnings: string[];
}

export type ReadText = (name: string) => string | undefined;

/** One parsed line of a config file. */
export type ConfigLine =
  | { kind: 'blank' | 'comment'; raw: string }
  | { kind: 'section'; raw: string; filter: string }
  | { kind: 'include'; raw: string; file: string }
  | { kind: 'initramfs'; raw: string; file: string; address: string }
  | { kind: 'setting'; raw: string; key: string; value: string }
  | { kind: 'other'; raw: string };

/** Split text into lines, remembering the newline style (for edits that keep every other byte). */
export function splitLines(text: string): { lines: string[]; eol: '\n' | '\r\n'; finalNewline: boolean } {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const finalNewline = text.length === 0 || text.endsWith('\n');
  const lines = text.split(/\r?\n/);
  if (finalNewline) lines.pop();
  return { lines, eol, finalNewline };
}

export function parseLine(raw: string): ConfigLine {
  const t = raw.trim();
  if (t === '') return { kind: 'blank', raw };
  if (t.startsWith('#')) return { kind: 'comment', raw };
  const sec = /^\[([^\]]*)\]/.exec(t);
  if (sec) return { kind: 'section', raw, filter: sec[1].trim() };
  const inc = /^include\s+(\S+)/.exec(t);
  if (inc) return { kind: 'include', raw, file: inc[1] };
  const ramfs = /^initramfs\s+(\S+)(?:\s+(\S+))?/.exec(t);
  if (ramfs) return { kind: 'initramfs', raw, file: ramfs[1], address: ramfs[2] ?? 'followkernel' };
  const eq = t.indexOf('=');
  if (eq > 0) return { kind: 'setting', raw, key: t.slice(0, eq).trim().toLowerCase(), value: t.slice(eq + 1).trim() };
  return { kind: 'other', raw };
}

/**
 * The conditional filter state while reading: one slot per filter type (model, edid, gpio, serial …). A filter of
 * a type replaces the previous one of that type; `[all]` clears every slot; `[none]` turns everything off until
 * `[all]`. Filters we cannot evaluate offline (EDID, HDMI, gpio, serial, tryboot …) count as not matching.
 */
export class FilterState {
  private slots = new Map<string, boolean>();
  constructor(
    readonly model: string,
    private readonly warn: (msg: string) => void = () => {},
  ) {}

  get active(): boolean {
    for (const v of this.slots.values()) if (!v) return false;
    return true;
  }

  apply(filter: string): void {
    const f = filter.toLowerCase();
    if (f === 'all') {
      this.slots.clear();
      return;
    }
    if (f === 'none') {
      this.slots.set('none', false);
      return;
    }
    if (f in MODEL_FILTERS) {
      this.slots.set('model', (MODEL_FILTERS[f] as string[]).includes(this.model));
      return;
    }
    const type = /^(edid|gpio\d*|hdmi|0x|tryboot|boardtype|board_type|partition|cm\w*)/.exec(f)?.[1] ?? f;
    this.warn(`section [${filter}] depends on the hardware at boot; treated as not matching`);
    this.slots.set(type.startsWith('gpio') ? `gpio:${f.split('=')[0]}` : type, false);
  }
}

/** The kernel the firmware looks for when config.txt sets none. */
export function defaultKernel(model: string, arm64: boolean): string {
  if (arm64) return 'kernel8.img';
  if (['pi4', 'pi400', 'cm4'].includes(model)) return 'kernel7l.img';
  if (['pi2', 'pi3', 'pi3+', 'cm3', 'pi02'].includes(model)) return 'kernel7.img';
  return 'kernel.img';
}

/**
 * Walk the config files as the firmware does and call `visit` for every line that is in effect (active section),
 * with the file it came from. Includes are followed inline with the current filter state.
 */
export function walkConfig(
  readFile: ReadText,
  model: string,
  visit: (line: ConfigLine, file: string, index: number) => void,
  opts: { root?: string; filesRead?: string[]; missing?: string[]; warnings?: string[] } = {},
): FilterState {
  const warnings = opts.warnings ?? [];
  const filter = new FilterState(model, (m) => {
    if (!warnings.includes(m)) warnings.push(m);
  });
  const stack: string[] = [];
  const readOne = (file: string): void => {
    if (stack.includes(file) || stack.length >= 16) {
      warnings.push(`include loop or nesting too deep at ${file} (via ${stack.join(' → ')}); not followed`);
      return;
    }
    const text = readFile(file);
    if (text === undefined) {
      opts.missing?.push(file);
      return;
    }
    opts.filesRead?.push(file);
    stack.push(file);
    splitLines(text).lines.forEach((raw, i) => {
      const line = parseLine(raw);
      if (line.kind === 'section') {
        filter.apply(line.filter);
        return;
      }
      if (!filter.active) return;
      visit(line, file, i);
      if (line.kind === 'include') readOne(line.file);
    });
    stack.pop();
  };
  readOne(opts.root ?? 'config.txt');
  return filter;
}

/** The first line of a cmdline file, trimmed: what the firmware passes to the kernel. */
export function firstLine(text: string): string {
  return (text.split(/\r?\n/)[0] ?? '').trim();
}

/**
 * Follow config.txt for `model` (default the Pi 4) and say which kernel, initramfs and cmdline file it boots.
 * `readFile` returns a file's text from the boot partition or undefined when it does not exist.
 */
export function resolveBootConfig(readFile: ReadText, model: string = 'pi4'): BootConfig {
  const filesRead: string[] = [];
  const missing: string[] = [];
  const warnings: string[] = [];
  const settings: Record<string, string> = {};
  let initramfs: InitramfsSetting | undefined;
  let userConfigFile: string | undefined;
  walkConfig(
    readFile,
    model,
    (line, file) => {
      if (line.kind === 'setting') {
        settings[line.key] = line.value;
        if (line.key === 'ramfsfile') initramfs = { file: line.value, address: settings.ramfsaddr ?? 'followkernel' };
        if (line.key === 'ramfsaddr' && initramfs) initramfs = { ...initramfs, address: line.value };
      } else if (line.kind === 'initramfs') {
        initramfs = { file: line.file, address: line.address };
      } else if (line.kind === 'include' && file === 'config.txt' && line.file.toLowerCase() === 'usercfg.txt') {
        userConfigFile = line.file;
      }
    },
    { filesRead, missing, warnings },
  );
  const arm64 = settings.arm_64bit !== undefined ? settings.arm_64bit !== '0' : ['pi5'].includes(model);
  const kernelExplicit = settings.kernel !== undefined && settings.kernel !== '';
  const kernel = kernelExplicit ? settings.kernel : defaultKernel(model, arm64);
  const cmdlineFile = settings.cmdline || 'cmdline.txt';
  const cmdText = readFile(cmdlineFile);
  filesRead.push(cmdlineFile);
  if (cmdText === undefined) missing.push(cmdlineFile);
  return {
    model,
    kernel,
    kernelExplicit,
    initramfs,
    cmdlineFile,
    cmdline: cmdText === undefined ? '' : firstLine(cmdText),
    cmdlineFound: cmdText !== undefined,
    arm64,
    filesRead,
    missing,
    userConfigFile,
    settings,
    warnings,
  };
}
