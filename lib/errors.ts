// Typed errors shared by every layer: each names what was wrong and where, so the CLI can print one clear line.
// Invariants:
// - Every `code` is one of ErrorCode: callers test `instanceof` (or the code), never a free string.
// - An error that crosses a worker thread is sent as plain data (serializeError) and rebuilt with its class,
//   code, hint and fields on the other side (reviveError).
import { accessSync, statSync, constants as fsConstants } from 'node:fs';
import { dirname } from 'node:path';

/** The Node fs error codes fsError() turns into a line of its own (see FS_FAULTS). */
export type FsErrorCode =
  | 'ENOSPC' | 'EDQUOT' | 'EFBIG' | 'EROFS' | 'EACCES' | 'EPERM' | 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EEXIST'
  | 'ENOTEMPTY' | 'ENAMETOOLONG' | 'EMFILE' | 'ENFILE' | 'EIO' | 'EBUSY' | 'ENXIO' | 'EXDEV';

/** Every machine-readable tag a PiImageError carries (the CLI's `--json` error events show it). */
export type ErrorCode =
  | 'CORRUPT' // an image, partition table or filesystem is damaged (CorruptImageError)
  | 'OUT_OF_BOUNDS' // a read or write past the end of its window (OutOfBoundsError)
  | 'NOT_FOUND' // a path inside an image, or a catalog image no URL has (NotFoundError)
  | 'SYMLINK_LOOP' // SymlinkLoopError
  | 'INPUT' // a profile field, argument or catalog entry we cannot use (InputError)
  | 'USAGE' // a command-line misuse; exit 2 (UsageError)
  | 'VERIFY' // a checksum does not match (VerifyError)
  | 'SAFETY' // flash refused a device; exit 3 (SafetyError)
  | 'SOURCE' // the base image could not be read or decompressed (SourceError)
  | 'BUILD' // a build lane failed outside the image code (BuildError)
  | 'INTERRUPTED' // the user stopped the command (InterruptedError)
  | 'DOWNLOAD' // an HTTP or network failure of one URL (source/download.ts DownloadError)
  | 'NETWORK' // no URL of a catalog image could be reached at all
  | 'IO' // a local write failed in a way fsError does not name
  | 'GPT' // a GPT disk where an MBR one is needed (image/gpt.ts GptDiskError)
  | 'NO_SPACE' // a FAT volume is full (image/fat/errors.ts NoSpaceError)
  | 'LOCK_REFUSED' // lock/build refused an artifact (LockRefusal)
  | 'UNSATISFIABLE' // an apt package cannot be installed (UnsatisfiableError)
  | FsErrorCode;

/** Base class: `code` is a stable machine-readable tag, `hint` tells the user what to do. */
export class PiImageError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.hint = hint;
  }
}

/** A disk image, partition table or filesystem is damaged or not what it claims to be. */
export class CorruptImageError extends PiImageError {
  readonly offset?: number;
  constructor(message: string, offset?: number, hint?: string) {
    super('CORRUPT', offset === undefined ? message : `${message} (at byte offset ${offset})`, hint);
    this.offset = offset;
  }
}

/** A read or write would go past the end of a file, partition or filesystem. */
export class OutOfBoundsError extends PiImageError {
  constructor(message: string) {
    super('OUT_OF_BOUNDS', message);
  }
}

/** A path inside a filesystem image does not exist, or is the wrong kind (file vs directory). */
export class NotFoundError extends PiImageError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

/** Resolving a path inside an image went round symlinks (one pointing to itself, or a cycle): not "missing". */
export class SymlinkLoopError extends PiImageError {
  constructor(message: string) {
    super('SYMLINK_LOOP', message, 'Fix or remove that symlink in the image.');
  }
}

/** The user gave input we cannot use (profile field, CLI argument, catalog entry). */
export class InputError extends PiImageError {
  constructor(message: string, hint?: string, code: 'INPUT' | 'USAGE' = 'INPUT') {
    super(code, message, hint);
  }
}

/** A command-line misuse (a bad flag value, a flag given twice, a bad combination); the CLI exits 2. */
export class UsageError extends InputError {
  constructor(message: string, hint?: string) {
    super(message, hint, 'USAGE');
  }
}

/** A downloaded or written artifact does not match its expected checksum. */
export class VerifyError extends PiImageError {
  constructor(message: string, hint?: string) {
    super('VERIFY', message, hint);
  }
}

/** flash refused to touch a device for safety; the CLI exits 3 for these. */
export class SafetyError extends PiImageError {
  constructor(message: string, hint?: string) {
    super('SAFETY', message, hint);
  }
}

/** The base image could not be read or decompressed (a truncated download, a failed xz). */
export class SourceError extends PiImageError {
  constructor(message: string, hint?: string) {
    super('SOURCE', message, hint);
  }
}

/** A build lane failed for a reason of its own (a worker that died, a compressor that failed). */
export class BuildError extends PiImageError {
  constructor(message: string, hint?: string) {
    super('BUILD', message, hint);
  }
}

/** The user stopped the command (Ctrl-C); what was done so far is kept where it can be resumed. */
export class InterruptedError extends PiImageError {
  constructor(message: string, hint?: string) {
    super('INTERRUPTED', message, hint);
  }
}

/** An artifact `lock` or `build` refuses: one line naming the artifact, its URL, why, and the profile key to change. */
export class LockRefusal extends PiImageError {
  readonly artifact: string;
  readonly url: string;
  readonly key: string;
  constructor(artifact: string, url: string, key: string, why: string, hint?: string) {
    super('LOCK_REFUSED', `${artifact}: ${url}: ${why} (profile key ${key})`, hint ?? `change ${key} in the profile, then run \`pi-image lock\` again`);
    this.artifact = artifact;
    this.url = url;
    this.key = key;
  }
}

/** A requested package (or one it needs) cannot be installed. */
export class UnsatisfiableError extends PiImageError {
  readonly chain: string[];
  readonly reason: string;
  constructor(chain: string[], reason: string, context?: string) {
    super('UNSATISFIABLE', `${context ? `${context}: ` : ''}${chain.join(' -> ')}: ${reason}`, 'Add the missing package to an apt source of the image, fix apt.mirror, or drop the package from apt.packages.');
    this.chain = chain;
    this.reason = reason;
  }
}

/** readMbr met a GUID Partition Table (its MBR holds only a protective 0xEE entry); readTable reads both. */
export class GptDiskError extends PiImageError {
  constructor(name: string) {
    super('GPT', `${name}: GPT disk: an MBR reader cannot read it`, 'Read it with readTable (lib/image/partition-table.ts), which reads MBR and GPT.');
  }
}

/** A FAT volume (or a fixed-size FAT12/16 root directory) has no room for what was asked. */
export class NoSpaceError extends PiImageError {
  constructor(message: string, hint?: string) {
    super('NO_SPACE', message, hint ?? 'use a bigger partition, or remove files first');
  }
}

/** Flash's verification found the target differs from what was written: `offset` is the first bad byte. */
export class FlashVerifyError extends VerifyError {
  readonly offset: number;
  constructor(message: string, offset: number, hint?: string) {
    super(message, hint);
    this.offset = offset;
  }
}

/** Why a host could not be reached at all: its name did not resolve, or nothing answered at its address. */
export type Unreachable = { kind: 'dns' | 'refused' | 'unreachable'; host: string };

/** An HTTP status worth asking again for: the server's trouble (5xx), a timeout (408) or a rate limit (429). */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/** A download failed for a reason other than a missing file or a bad checksum (HTTP error, network, timeout). */
export class DownloadError extends PiImageError {
  readonly url: string;
  readonly status?: number;
  /** Asking again will not help (a redirect loop, a wrong kind of answer, a 4xx): no retries. */
  readonly permanent: boolean;
  /** The host could not be reached (no network, DNS, nothing listening). */
  readonly unreachable?: Unreachable;
  /** The message without the URL in front. */
  readonly detail: string;
  constructor(url: string, message: string, opts: { status?: number; permanent?: boolean; unreachable?: Unreachable; hint?: string } = {}) {
    super('DOWNLOAD', `${url}: ${message}`, opts.hint ?? 'Check the network or the URL, then run the command again.');
    this.url = url;
    this.detail = message;
    this.status = opts.status;
    this.unreachable = opts.unreachable;
    this.permanent = opts.permanent === true || (opts.status !== undefined && !isRetryableStatus(opts.status));
  }
}

// ---- across a worker thread ------------------------------------------------------------------------------------
// postMessage's structured clone keeps an Error's message and stack but not its class, code or fields: the sender
// flattens it to plain data, the receiver rebuilds it from the class of the same name.

/** An error as plain data, for postMessage. */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  hint?: string;
  /** The class's own fields (offset, url, chain …): plain values only. */
  fields: Record<string, unknown>;
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** The classes reviveError knows by name: every error class pi-image has (all of them live in this file). */
export const ERROR_CLASSES: ErrorClass[] = [
  PiImageError, CorruptImageError, OutOfBoundsError, NotFoundError, SymlinkLoopError, InputError, UsageError,
  VerifyError, SafetyError, SourceError, BuildError, InterruptedError, LockRefusal, UnsatisfiableError,
  GptDiskError, NoSpaceError, FlashVerifyError, DownloadError,
];

const plain = (v: unknown): boolean =>
  v === null || ['string', 'number', 'boolean', 'undefined'].includes(typeof v) || (Array.isArray(v) && v.every(plain));

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) if (!['name', 'message', 'stack', 'code', 'hint'].includes(k) && plain(v)) fields[k] = v;
  const { code, hint } = err as { code?: unknown; hint?: unknown };
  return {
    name: err.name, message: err.message, stack: err.stack, fields,
    code: typeof code === 'string' ? code : undefined, hint: typeof hint === 'string' ? hint : undefined,
  };
}

/**
 * The error `data` describes, as an instance of the class of its name (from `classes`), with its code, hint, fields
 * and the worker's stack; `prefix` goes in front of the message (e.g. which nodes the lane built). An unknown
 * name with a code gives a PiImageError, without one a plain Error.
 */
export function reviveError(data: SerializedError, classes: ErrorClass[] = ERROR_CLASSES, prefix = ''): Error {
  const cls = classes.find((c) => c.name === data.name) ?? (data.code ? PiImageError : Error);
  const err = Object.create(cls.prototype) as Error;
  Object.defineProperty(err, 'message', { value: prefix + data.message, writable: true, configurable: true });
  Object.defineProperty(err, 'stack', { value: data.stack, writable: true, configurable: true });
  Object.assign(err, { name: data.name, ...data.fields });
  if (data.code !== undefined) Object.assign(err, { code: data.code });
  if (data.hint !== undefined) Object.assign(err, { hint: data.hint });
  return err;
}

// ---- file-system errors ---------------------------------------------------------------------------------------
// Node's fs errors say "ENOSPC: no space left on device, write" (no file when the call took an fd) or, for a
// recursive mkdir on a read-only file system, ENOENT. fsError() is the one place that turns them into a line saying
// what failed, where, and what to do; atPath() lets the code that knows the file name attach it on the way up.

interface ErrnoLike {
  code: string;
  syscall?: string;
  path?: string;
  dest?: string;
  message: string;
}

const isErrno = (e: unknown): e is ErrnoLike =>
  e instanceof Error && !(e instanceof PiImageError) && typeof (e as { code?: unknown }).code === 'string' && /^E[A-Z0-9]+$/.test((e as unknown as { code: string }).code);

const FS_FAULTS: Record<FsErrorCode, { what: string; hint: string }> = {
  ENOSPC: { what: 'no space left on the device', hint: 'Free some space on that file system, or write somewhere with more room.' },
  EDQUOT: { what: 'disk quota exceeded', hint: 'Free some space within your quota, or write somewhere else.' },
  EFBIG: { what: 'file too large for that file system', hint: 'Write to a file system that holds large files (not FAT32).' },
  EROFS: { what: 'read-only file system', hint: 'Write somewhere writable (another directory), or remount that file system read-write.' },
  EACCES: { what: 'permission denied', hint: 'Check the owner and mode of that path, or use another one.' },
  EPERM: { what: 'operation not permitted', hint: 'Check the owner and mode of that path, or use another one.' },
  ENOENT: { what: 'no such file or directory', hint: 'Check the path.' },
  ENOTDIR: { what: 'a part of the path is not a directory', hint: 'Check the path.' },
  EISDIR: { what: 'it is a directory', hint: 'Name a file, not a directory.' },
  EEXIST: { what: 'it already exists', hint: 'Remove it or choose another name.' },
  ENOTEMPTY: { what: 'the directory is not empty', hint: 'Remove what is in it, or choose another name.' },
  ENAMETOOLONG: { what: 'the name is too long', hint: 'Use a shorter path.' },
  EMFILE: { what: 'too many open files', hint: 'Raise the limit (ulimit -n) and run again.' },
  ENFILE: { what: 'too many open files in the system', hint: 'Close other programs and run again.' },
  EIO: { what: 'input/output error', hint: 'The disk or card may be failing: check dmesg.' },
  EBUSY: { what: 'device or resource busy', hint: 'Close what uses it and run again.' },
  ENXIO: { what: 'no such device', hint: 'Check that the device is still attached.' },
  EXDEV: { what: 'not on the same file system', hint: 'Keep the output and its temporary files on one file system.' },
};

const VERBS: Record<string, string> = {
  open: 'open', write: 'write', read: 'read', mkdir: 'create directory', mkdtemp: 'create directory', rename: 'rename',
  unlink: 'remove', rmdir: 'remove', rm: 'remove', copyfile: 'copy', link: 'link', symlink: 'make symlink', ftruncate: 'resize',
  fsync: 'flush', fdatasync: 'flush', close: 'close', stat: 'read', lstat: 'read', scandir: 'list', chmod: 'chmod',
  chown: 'chown', utime: 'set times of', futime: 'set times of', access: 'use',
};

/** Attach `path` to a Node fs error that lacks one (calls on an fd), so fsError can name the file. */
export function atPath(err: unknown, path: string): unknown {
  if (isErrno(err) && !err.path) err.path = path;
  return err;
}

/** The nearest existing ancestor of `p` (itself when it exists). */
function existingAncestor(p: string): string {
  let d = p;
  for (;;) {
    try {
      statSync(d);
      return d;
    } catch {
      const up = dirname(d);
      if (up === d) return d;
      d = up;
    }
  }
}

/** Node's fs error as a PiImageError of one line (what, where, why) and a hint; anything else unchanged. `where`
 *  names the file when Node did not. */
export function fsError(err: unknown, where?: string): unknown {
  if (!isErrno(err)) return err;
  let code = err.code;
  const path = err.path ?? where;
  // mkdir -p on a read-only (or unwritable) file system reports ENOENT for the part it could not make.
  if (code === 'ENOENT' && err.syscall === 'mkdir' && path) {
    try {
      accessSync(existingAncestor(dirname(path)), fsConstants.W_OK);
    } catch (e) {
      if (isErrno(e) && (e.code === 'EROFS' || e.code === 'EACCES')) code = e.code;
    }
  }
  const fault = (FS_FAULTS as Record<string, { what: string; hint: string } | undefined>)[code];
  if (!fault) return err;
  const verb = VERBS[err.syscall ?? ''] ?? err.syscall ?? 'use';
  const target = path ? ` ${path}${err.dest ? ` to ${err.dest}` : ''}` : '';
  return new PiImageError(code as FsErrorCode, `cannot ${verb}${target}: ${fault.what} (${code})`, fault.hint, { cause: err });
}
