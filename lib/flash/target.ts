// The flash target before anything is written to it: the safety checks (safety.ts) with the confirm and unmount
// steps around them, and opening it for the copy.
// Invariants:
// - nothing is written before checkTarget has returned; a refusal is a SafetyError that says what to do.
// - a device is opened O_EXCL (EBUSY when mounted or in use); a file is written under `.NAME.partial-PID` beside
//   the target and takes its name only once verified (flash.ts); partials of dead flashes are removed first.
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { FileIO } from '../image/io.ts';
import { processAlive } from '../pid.ts';
import { SafetyError } from '../errors.ts';
import { describeTarget, listDrives, drivesHoldingPath, systemDrives, type Drive, type Target } from './drives.ts';
import { assessTarget, enforce, describeDrive, type Finding } from './safety.ts';

export const PATH_ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

export interface ConfirmRequest {
  target: string;
  /** "Generic Flash Disk, 31.9 GB, usb, removable" or "regular file". */
  description: string;
  size: number;
  imageSize: number;
  warnings: string[];
}

/** What the checks need from the flash options. */
export interface TargetOptions {
  image: string;
  target: string;
  confirm?: (req: ConfirmRequest) => boolean | Promise<boolean>;
  yes?: boolean;
  force?: boolean;
  unmount?: boolean;
  onWarning?: (message: string) => void;
}

function unmountAll(drive: Drive): string[] {
  const done: string[] = [];
  const points = drive.mountpoints.filter((m) => m.startsWith('/')).sort((a, b) => b.length - a.length);
  for (const m of points) {
    try {
      execFileSync('umount', [m], { env: PATH_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
      done.push(m);
    } catch (err) {
      const msg = String((err as { stderr?: Buffer }).stderr ?? err).trim();
      throw new SafetyError(`could not unmount ${m} (${drive.path}): ${msg}`, 'Close whatever uses it and unmount it yourself.');
    }
  }
  return done;
}

/** Check the target, unmounting when asked; returns the (re-read) target, findings to show, and what was unmounted. */
export async function checkTarget(opts: TargetOptions, imageSize: number): Promise<{ target: Target; warnings: Finding[]; unmounted: string[] }> {
  const imageStats = statSync(opts.image);
  const needDrives = (() => {
    try {
      return statSync(opts.target).isBlockDevice();
    } catch {
      return false;
    }
  })();
  let drives: Drive[] = needDrives ? listDrives() : [];
  let target = describeTarget(opts.target, drives);
  const ctx = () => ({
    imageSize,
    imageStats,
    systemDrives: needDrives ? systemDrives(drives) : [],
    sourceDrives: needDrives ? drivesHoldingPath(drives, opts.image, imageStats) : [],
  });
  let { findings, needsConfirmation } = assessTarget(target, ctx());
  let unmounted: string[] = [];
  if (opts.unmount && target.kind === 'device' && findings.some((f) => f.level === 'mounted')) {
    // Unmount only when nothing else would refuse anyway.
    enforce(findings.filter((f) => f.level !== 'mounted'), opts);
    unmounted = unmountAll(target.drive);
    drives = listDrives();
    target = describeTarget(opts.target, drives);
    ({ findings, needsConfirmation } = assessTarget(target, ctx()));
  }
  const warnings = enforce(findings, opts);
  for (const w of warnings) opts.onWarning?.(w.message);
  if (needsConfirmation && !opts.yes) {
    const description = target.kind === 'device' ? describeDrive(target.drive) : target.kind === 'file' ? 'existing file that is not a disk image' : 'unknown';
    const req: ConfirmRequest = {
      target: opts.target,
      description,
      size: target.kind === 'device' || target.kind === 'file' ? target.size : 0,
      imageSize,
      warnings: warnings.map((w) => w.message),
    };
    if (!opts.confirm) {
      throw new SafetyError(`${opts.target} (${description}) will be overwritten: confirmation needed`, 'Run on a terminal to be asked, or pass --yes.');
    }
    if (!(await opts.confirm(req))) throw new SafetyError(`cancelled: ${opts.target} was not written`);
  }
  return { target, warnings, unmounted };
}

/** Where a flash writes: the device itself, or a temporary name beside a file target (stale ones removed). */
export function writePathFor(target: string, isDevice: boolean): string {
  if (isDevice) return target;
  removeStalePartials(target);
  return join(dirname(target), `.${basename(target)}.partial-${process.pid}`);
}

/** Open what writePathFor named: a device exclusively, its first `imageSize` bytes; a file new, that size, sparse. */
export function openForWrite(writePath: string, isDevice: boolean, imageSize: number): FileIO {
  if (isDevice) return FileIO.open(writePath, { write: true, exclusive: true, size: imageSize });
  const file = FileIO.create(writePath, imageSize);
  // Its full size at once: the verify's workers read it by path behind the writer, holes included.
  file.truncate(imageSize);
  return file;
}

/** A flash into a file that was killed (kill -9, power cut) left `.NAME.partial-PID`: removed by the next flash
 *  into the same file, once that pid is gone. */
function removeStalePartials(target: string): void {
  const dir = dirname(target);
  const prefix = `.${basename(target)}.partial-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return; // the directory's problems are reported when the file is opened
  }
  for (const name of names) {
    const pid = name.startsWith(prefix) ? Number(name.slice(prefix.length)) : NaN;
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid)) rmSync(join(dir, name), { force: true });
  }
}
