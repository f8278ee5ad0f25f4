// Initramfs overlay: a small uncompressed newc cpio (made with cpio-stream) appended, 4-byte aligned, to an existing
// initrd. The kernel unpacks concatenated archives in order, later files replacing earlier ones, so this adds or
// replaces files without unpacking the original (Documentation/driver-api/early-userspace/buffer-format.rst).
// cpio-stream counts name length in characters, so only ASCII names are accepted.
import cpio from 'cpio-stream';
import { InputError } from '../errors.ts';

export interface OverlayFile {
  /** Path inside the initramfs, relative (`conf/conf.d/x`); a trailing `/` makes a directory. */
  name: string;
  data?: Buffer | string;
  mode?: number;
}

/** Throw a clear error for a name cpio-stream would write wrongly (non-ASCII) or the kernel would reject. */
export function checkOverlayName(name: string): void {
  if (!/^[\x20-\x7e]+$/.test(name)) {
    throw new InputError(
      `initramfs overlay: file name ${JSON.stringify(name)} is not plain ASCII`,
      'cpio-stream miscounts the length of non-ASCII names and would write a broken archive: rename the file.',
    );
  }
  if (name.startsWith('/') || name.split('/').includes('..')) {
    throw new InputError(`initramfs overlay: file name ${JSON.stringify(name)} must be relative, without '..'`);
  }
}

/** Build the overlay archive in memory (it is small: a few config files). Parent directories are added. */
export async function makeOverlay(files: OverlayFile[], mtime: Date): Promise<Buffer> {
  const pack = cpio.pack({ format: 'newc' });
  const chunks: Buffer[] = [];
  const collected = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (c: Buffer) => chunks.push(c));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  const dirs = new Set<string>();
  const add = (header: Record<string, unknown>, body?: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const cb = (err?: Error): void => (err ? reject(err) : resolve());
      if (body) pack.entry(header, body, cb);
      else pack.entry(header, cb);
    });
  for (const f of files) checkOverlayName(f.name.replace(/\/$/, ''));
  for (const f of files) {
    const isDir = f.name.endsWith('/');
    const name = f.name.replace(/\/$/, '');
    const parts = name.split('/');
    for (let i = 1; i <= parts.length - (isDir ? 0 : 1); i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      await add({ name: d, type: 'directory', mode: isDir && i === parts.length ? (f.mode ?? 0o755) : 0o755, mtime, uid: 0, gid: 0, devmajor: 0, rdevmajor: 0, rdevminor: 0 });
    }
    if (isDir) continue;
    const data = Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data ?? '');
    await add({ name, type: 'file', mode: f.mode ?? 0o644, mtime, uid: 0, gid: 0, devmajor: 0, rdevmajor: 0, rdevminor: 0 }, data);
  }
  pack.finalize();
  return collected;
}

/** Bytes of zero padding to put after an initrd of `length` bytes so the next archive starts 4-byte aligned. */
export function alignPadding(length: number): number {
  return (4 - (length % 4)) % 4;
}
