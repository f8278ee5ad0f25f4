// The Pi kernel on the boot partition.
// - Recognise gzip vs a raw arm64 Image by magic, never by name.
// - Decompress `vmlinuz` → `vmlinux` as a stream: an arm64 kernel cannot decompress itself
//   (Documentation/arm64/booting.rst), and the Pi 4 boots it directly (direct-boot.ts).
// - The script + apt hook that redo it after kernel updates (flash-kernel writes a new vmlinuz).
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { CorruptImageError } from '../errors.ts';

/** gzip member header: 1f 8b, method 8 (deflate). */
export function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 3 && buf[0] === 0x1f && buf[1] === 0x8b && buf[2] === 0x08;
}

/** arm64 Linux Image header: magic "ARM\x64" at byte 56 (Documentation/arm64/booting.rst). */
export function isArm64Image(buf: Uint8Array): boolean {
  return buf.length >= 60 && buf[56] === 0x41 && buf[57] === 0x52 && buf[58] === 0x4d && buf[59] === 0x64;
}

export type KernelKind = 'gzip' | 'arm64-image' | 'unknown';

export function kernelKind(head: Uint8Array): KernelKind {
  if (isGzip(head)) return 'gzip';
  if (isArm64Image(head)) return 'arm64-image';
  return 'unknown';
}

export interface KernelExtractResult {
  /** What the input was. */
  kind: KernelKind;
  bytesIn: number;
  bytesOut: number;
  sha256In: string;
  sha256Out: string;
  /** True when the output starts with the arm64 Image header. */
  arm64: boolean;
}

/**
 * Stream a kernel from `input` to `write`: gunzip when it is gzip, copy as is otherwise (a raw Image is kept).
 * Constant memory. Throws CorruptImageError naming `name` on a broken gzip stream or an empty input.
 */
export async function extractKernel(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  write: (chunk: Buffer) => void | Promise<void>,
  name = 'kernel',
): Promise<KernelExtractResult> {
  const hin = createHash('sha256');
  const hout = createHash('sha256');
  let bytesIn = 0;
  let bytesOut = 0;
  let head: Buffer | undefined;
  let kind: KernelKind = 'unknown';
  const src = Readable.from(
    (async function* () {
      for await (const c of input) {
        const b = Buffer.from(c.buffer, c.byteOffset, c.byteLength);
        bytesIn += b.length;
        hin.update(b);
        yield b;
      }
    })(),
  );
  const emit = async (b: Buffer): Promise<void> => {
    if (bytesOut < 64) head = Buffer.concat([head ?? Buffer.alloc(0), b.subarray(0, 64 - bytesOut)]);
    bytesOut += b.length;
    hout.update(b);
    await write(b);
  };
  // Peek the first bytes to decide.
  const it = src[Symbol.asyncIterator]();
  let first = Buffer.alloc(0);
  let done = false;
  while (first.length < 64 && !done) {
    const r = await it.next();
    if (r.done) done = true;
    else first = Buffer.concat([first, r.value as Buffer]);
  }
  if (first.length === 0) throw new CorruptImageError(`${name}: kernel file is empty`);
  kind = kernelKind(first);
  const rest = (async function* () {
    yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value as Buffer;
    }
  })();
  if (kind === 'gzip') {
    const gunzip = createGunzip();
    const fed = Readable.from(rest).pipe(gunzip);
    try {
      for await (const chunk of fed) await emit(chunk as Buffer);
    } catch (err) {
      throw new CorruptImageError(`${name}: gzip stream is damaged (${(err as Error).message})`, bytesIn);
    }
  } else {
    for await (const chunk of rest) await emit(chunk);
  }
  return {
    kind,
    bytesIn,
    bytesOut,
    sha256In: hin.digest('hex'),
    sha256Out: hout.digest('hex'),
    arm64: head !== undefined && isArm64Image(head),
  };
}

/** Where the hook lives in the root filesystem. */
export const APT_HOOK_PATH = '/etc/apt/apt.conf.d/999-pi-image-decompress-kernel';
/** Default name of the script on the boot partition. */
export const DECOMPRESS_SCRIPT_NAME = 'auto_decompress_kernel';

export interface DecompressScriptOptions {
  /** Packed kernel name on the boot partition (vmlinuz). */
  packed?: string;
  /** Decompressed kernel name (vmlinux). */
  kernel?: string;
  /** Where the boot partition is mounted on the running system. */
  bootDir?: string;
}

/** Name of the checksum file the script keeps next to the kernel. */
export function decompressSumFile(opts: DecompressScriptOptions = {}): string {
  return `${opts.packed ?? 'vmlinuz'}.sha256`;
}

/** Contents of that checksum file for a packed kernel (write it at build time so the first run has nothing to do). */
export function decompressSumText(packed: Uint8Array): string {
  return createHash('sha256').update(packed).digest('hex') + '\n';
}

/**
 * The script on the boot partition that re-decompresses the kernel when the packed one changed (checksum), keeping
 * the previous decompressed kernel as `.bak`. POSIX sh; `BOOT` in the environment overrides the boot directory.
 */
export function decompressScript(opts: DecompressScriptOptions = {}): string {
  const packed = opts.packed ?? 'vmlinuz';
  const kernel = opts.kernel ?? 'vmlinux';
  const boot = opts.bootDir ?? '/boot/firmware';
  return `#!/bin/sh
# Written by pi-image. The Pi 4 boots ${kernel} directly (u-boot cannot read USB disks), and arm64 kernels cannot
# decompress themselves: after a kernel update (flash-kernel writes a new ${packed}) this re-creates ${kernel}.
# Run by apt (${APT_HOOK_PATH}); safe to run by hand.
set -eu
BOOT="\${BOOT:-${boot}}"
PACKED="$BOOT/${packed}"
KERNEL="$BOOT/${kernel}"
SUM="$BOOT/${decompressSumFile({ packed })}"
[ -f "$PACKED" ] || exit 0
new=$(sha256sum "$PACKED" | cut -d' ' -f1)
if [ -f "$KERNEL" ] && [ -f "$SUM" ] && [ "$(cat "$SUM")" = "$new" ]; then
  exit 0
fi
if gzip -t "$PACKED" 2>/dev/null; then
  gzip -dc "$PACKED" > "$KERNEL.new"
else
  cp "$PACKED" "$KERNEL.new"
fi
[ -f "$KERNEL" ] && cp "$KERNEL" "$KERNEL.bak"
mv -f "$KERNEL.new" "$KERNEL"
echo "$new" > "$SUM"
sync
echo "pi-image: ${kernel} re-created from ${packed}"
`;
}

/** The apt hook text: run the script after every dpkg run. */
export function aptHookText(opts: DecompressScriptOptions & { script?: string } = {}): string {
  const script = `${opts.bootDir ?? '/boot/firmware'}/${opts.script ?? DECOMPRESS_SCRIPT_NAME}`;
  return `// Written by pi-image: re-decompress the Pi kernel after package changes (see ${script}).\nDPkg::Post-Invoke { "if [ -x /bin/sh ] && [ -f ${script} ]; then /bin/sh ${script}; fi"; };\n`;
}
