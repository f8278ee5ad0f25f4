// Minimal types for cpio-stream 1.4 (it ships none): the pack side used by the initramfs overlay.
declare module 'cpio-stream' {
  import type { Readable, Writable } from 'node:stream';
  interface CpioPack extends Readable {
    entry(header: Record<string, unknown>, callback?: (err?: Error) => void): Writable;
    entry(header: Record<string, unknown>, buffer: Buffer | string, callback?: (err?: Error) => void): Writable;
    finalize(): void;
  }
  const cpio: { pack(opts?: { format?: 'odc' | 'newc' }): CpioPack; extract(): Writable };
  export default cpio;
}
