// The safety rules of flash, as a pure function of what the target is: hard refusals (system disk, the disk the
// image lives on, too small, read-only), refusals lifted by --unmount (mounted) or --force (soft: internal disk,
// a partition instead of a disk), warnings (very large drive), and whether the user must confirm.
import type { Stats } from 'node:fs';
import { FileIO } from '../image/io.ts';
import { hasBootSignature, SECTOR } from '../image/mbr.ts';
import { SafetyError } from '../errors.ts';
import type { Drive, Target } from './drives.ts';

export type FindingLevel = 'refuse' | 'mounted' | 'soft' | 'warn';

export interface Finding {
  level: FindingLevel;
  /** Stable tag: system, source, same-file, too-small, read-only, not-a-disk, mounted, internal, partition, large. */
  code: string;
  message: string;
}

export interface SafetyContext {
  /** Bytes the target must hold (0 when unknown, e.g. for `pi-image drives`). */
  imageSize: number;
  /** Stats of the source image, to refuse writing over it. */
  imageStats?: Stats;
  /** Drives holding /, /boot, swap… */
  systemDrives: Drive[];
  /** Drives holding the source image. */
  sourceDrives: Drive[];
}

/** Drives bigger than this are probably not an SD card or a boot SSD: warn. */
export const LARGE_DRIVE = 2e12;

/** Sizes of drives as their labels give them: decimal GB ("31.9 GB"). */
export const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;

/** Does an existing regular file already look like a disk image (MBR signature) — or is it empty? */
export function fileLooksLikeImage(path: string): boolean {
  const io = FileIO.open(path);
  try {
    return io.size === 0 || (io.size >= SECTOR && hasBootSignature(io.read(0, SECTOR)));
  } finally {
    io.close();
  }
}

/** Everything worth saying about writing an image to `target`. */
export function assessTarget(target: Target, ctx: SafetyContext): { findings: Finding[]; needsConfirmation: boolean } {
  const findings: Finding[] = [];
  const add = (level: FindingLevel, code: string, message: string) => findings.push({ level, code, message });
  const same = (s: Stats) => ctx.imageStats && s.dev === ctx.imageStats.dev && s.ino === ctx.imageStats.ino;

  if (target.kind === 'missing') return { findings, needsConfirmation: false };
  if (target.kind === 'other') {
    add('refuse', 'not-a-disk', `${target.path} is neither a block device nor a regular file`);
    return { findings, needsConfirmation: true };
  }
  if (same(target.stats)) add('refuse', 'same-file', `${target.path} is the source image itself`);
  if (target.kind === 'file') {
    // A new file, an empty one or an earlier image is simply replaced; any other file needs a yes.
    return { findings, needsConfirmation: !fileLooksLikeImage(target.path) };
  }

  const d = target.drive;
  const label = `${target.path} (${describeDrive(d)})`;
  if (ctx.systemDrives.some((s) => s.path === d.path)) add('refuse', 'system', `${label} holds the running system (${d.mountpoints.join(', ') || '/'})`);
  if (ctx.sourceDrives.some((s) => s.path === d.path)) add('refuse', 'source', `${label} holds the source image`);
  if (d.readOnly) add('refuse', 'read-only', `${label} is read-only`);
  if (ctx.imageSize > 0 && target.size < ctx.imageSize) {
    add('refuse', 'too-small', `${label} holds ${target.size} bytes, smaller than the image (${ctx.imageSize} bytes)`);
  }
  if (d.mountpoints.length > 0) add('mounted', 'mounted', `${label} is mounted at ${d.mountpoints.join(', ')}`);
  if (target.partition) add('soft', 'partition', `${target.path} is a partition of ${d.path}; images are written to whole disks`);
  const external = d.removable || d.hotplug || d.type === 'loop' || ['usb', 'mmc', 'sdio', 'ieee1394'].includes(d.transport ?? '');
  if (!external) add('soft', 'internal', `${label} looks like an internal disk (not removable, not USB/SD)`);
  if (target.size > LARGE_DRIVE) add('warn', 'large', `${label} is very large (${gb(target.size)}) for a Pi boot card or disk`);
  return { findings, needsConfirmation: true };
}

/** Model, vendor, size and transport in one short phrase: "SanDisk Ultra, 31.9 GB, usb, removable". */
export function describeDrive(d: Drive): string {
  const name = [d.vendor?.startsWith('0x') ? undefined : d.vendor, d.model].filter(Boolean).join(' ') || d.name;
  return [name, gb(d.size), d.transport, d.removable ? 'removable' : undefined].filter(Boolean).join(', ');
}

/**
 * Throw a SafetyError for the first finding not lifted by the options; return the warnings (and the lifted soft
 * findings) for the caller to show.
 */
export function enforce(findings: Finding[], opts: { force?: boolean; unmount?: boolean }): Finding[] {
  const hard = findings.find((f) => f.level === 'refuse');
  if (hard) throw new SafetyError(`refusing to write ${hard.message}`, hintFor(hard.code));
  const mounted = findings.find((f) => f.level === 'mounted');
  if (mounted && !opts.unmount) throw new SafetyError(`refusing to write: ${mounted.message}`, 'Unmount it first, or pass --unmount to let pi-image unmount it.');
  const soft = findings.find((f) => f.level === 'soft');
  if (soft && !opts.force) throw new SafetyError(`refusing to write: ${soft.message}`, 'Pass --force if you are sure.');
  return findings.filter((f) => f.level === 'warn' || f.level === 'soft');
}

function hintFor(code: string): string | undefined {
  switch (code) {
    case 'too-small':
      return 'Use a larger card or disk.';
    case 'system':
    case 'source':
      return 'Pick another drive; pi-image drives lists the candidates.';
    default:
      return undefined;
  }
}
