// Typed errors shared by every layer: each names what was wrong and where, so the CLI can print one clear line.

/** Base class: `code` is a stable machine-readable tag, `hint` tells the user what to do. */
export class PiImageError extends Error {
  readonly code: string;
  readonly hint?: string;
  constructor(code: string, message: string, hint?: string, options?: { cause?: unknown }) {
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

/** The user gave input we cannot use (profile field, CLI argument, catalog entry). */
export class InputError extends PiImageError {
  constructor(message: string, hint?: string, code = 'INPUT') {
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
