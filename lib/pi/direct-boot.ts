// Edit the boot config so a Pi 4 boots the decompressed kernel directly (`kernel=vmlinux` +
// `initramfs initrd.img followkernel`), bypassing u-boot: Ubuntu's u-boot cannot read USB disks on the Pi 4, and an
// arm64 kernel cannot decompress itself (Documentation/arm64/booting.rst), so the firmware must load vmlinux.
// The change goes where the release expects user changes: usercfg.txt when config.txt includes it, otherwise a
// trailing [all] block in config.txt. Every other line is kept byte for byte; re-running replaces our block.
import { CorruptImageError } from '../errors.ts';
import { parseLine, resolveBootConfig, splitLines, type ReadText } from './config-txt.ts';

export const BLOCK_BEGIN = '# pi-image: boot the kernel directly, bypassing u-boot (it cannot read USB disks on the Pi 4)';
export const BLOCK_END = '# pi-image: end';

export interface DirectBootOptions {
  /** Kernel file to boot (default vmlinux). */
  kernel?: string;
  /** Initramfs file, loaded right after the kernel (default initrd.img). */
  initramfs?: string;
  model?: string;
}

/** Remove a previous pi-image block (and the newline that separated it) so edits are idempotent. */
function stripOurBlock(lines: string[]): string[] {
  const b = lines.indexOf(BLOCK_BEGIN);
  if (b < 0) return lines;
  const e = lines.indexOf(BLOCK_END, b);
  return [...lines.slice(0, b), ...lines.slice(e < 0 ? lines.length : e + 1)];
}

/** Whether the filter state at the end of `text` is [all] (so appended lines apply to every model). */
function endsInAll(text: string): boolean {
  let all = true;
  for (const raw of splitLines(text).lines) {
    const l = parseLine(raw);
    if (l.kind === 'section') all = l.filter.toLowerCase() === 'all';
  }
  return all;
}

/** Append our block to `text`, keeping its newline style and every existing byte (but a previous block of ours). */
export function appendBlock(text: string, body: string[], forceAll: boolean): string {
  const { lines, eol } = splitLines(text);
  const kept = stripOurBlock(lines);
  const head = kept.length === 0 ? '' : kept.join(eol) + eol;
  const needAll = forceAll || !endsInAll(kept.join('\n'));
  const block = [BLOCK_BEGIN, ...(needAll ? ['[all]'] : []), ...body, BLOCK_END];
  return head + block.join(eol) + eol;
}

/**
 * Given the boot files, return the edited config files (name → full new text) that make `model` boot `kernel`
 * with `initramfs … followkernel`. Only changed files are returned. Checked with resolveBootConfig: if the
 * preferred place (usercfg.txt) does not win — something later overrides it — config.txt gets the block instead.
 */
export function editConfigForDirectBoot(readFile: ReadText, opts: DirectBootOptions = {}): Record<string, string> {
  const kernel = opts.kernel ?? 'vmlinux';
  const initramfs = opts.initramfs ?? 'initrd.img';
  const model = opts.model ?? 'pi4';
  const before = resolveBootConfig(readFile, model);
  const body = [`kernel=${kernel}`, `initramfs ${initramfs} followkernel`];
  if (!before.arm64) body.push('arm_64bit=1');

  const works = (files: Record<string, string>): boolean => {
    const r = resolveBootConfig((n) => (n in files ? files[n] : readFile(n)), model);
    return r.kernel === kernel && r.initramfs?.file === initramfs && r.initramfs.address === 'followkernel' && r.arm64;
  };
  const candidates: Record<string, string>[] = [];
  if (before.userConfigFile) {
    const name = before.userConfigFile;
    candidates.push({ [name]: appendBlock(readFile(name) ?? '', body, false) });
  }
  const config = readFile('config.txt') ?? '';
  candidates.push({ 'config.txt': appendBlock(config, body, true) });
  for (const c of candidates) if (works(c)) return c;
  throw new CorruptImageError(
    `config.txt: could not make ${model} boot ${kernel}: a later setting overrides every place tried`,
    undefined,
    'Look for kernel= or include lines after the usercfg.txt include, or an [all]-less section at the end.',
  );
}
