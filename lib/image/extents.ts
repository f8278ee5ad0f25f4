// Where a file's data lies, without reading its holes: lseek(SEEK_DATA / SEEK_HOLE) walked by a tiny perl helper
// process, since Node has no binding for it. perl because it is there without a compiler: perl-base is Essential
// on Debian and Ubuntu, and macOS ships perl (an N-API addon would need a compiler or prebuilt binaries, python3 is
// not installed everywhere, filefrag is Linux/e2fsprogs-only and reports unwritten extents that read as zeros).
// Invariants: every non-zero byte of the file lies inside a returned extent (extents may also hold zeros, and are
// widened to whole blocks); when the helper is missing or the file system cannot tell, the answer is undefined and
// the caller reads everything (still correct, only slower); regular files only. PI_IMAGE_NO_SEEK_DATA=1 forces
// that fallback (tests).
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import type { ByteRange } from './sparse.ts';

/** lseek whence values: Linux, FreeBSD and Solaris use 3/4; macOS swaps them. */
function whence(): { data: number; hole: number } | undefined {
  if (process.platform === 'linux' || process.platform === 'freebsd' || process.platform === 'sunos') return { data: 3, hole: 4 };
  if (process.platform === 'darwin') return { data: 4, hole: 3 };
  return undefined;
}

// Prints "start end" per data extent; exits 3 when lseek refuses SEEK_DATA (EINVAL: not supported here).
// ENXIO from SEEK_DATA means no data at or after the position: the end.
const SCRIPT = `
use strict; use POSIX ();
my ($path, $D, $H) = @ARGV;
open(my $f, '<', $path) or do { print STDERR "$path: $!\\n"; exit 2 };
binmode STDOUT; my $size = -s $f; my $pos = 0; my $out = '';
while ($pos < $size) {
  my $d = sysseek($f, $pos, $D);
  if (!defined $d) { exit 3 if $! == POSIX::EINVAL; last if $! == POSIX::ENXIO; print STDERR "$!\\n"; exit 4 }
  $d += 0;
  my $h = sysseek($f, $d, $H);
  if (!defined $h) { exit 3 if $! == POSIX::EINVAL; $h = $size }
  $h += 0; $h = $size if $h > $size;
  $out .= "$d $h\\n";
  if (length($out) > 65536) { print $out; $out = '' }
  last if $h <= $pos; $pos = $h;
}
print $out; print "end\\n"; exit 0;
`;

let perlMissing = false;

/**
 * The data extents of `path` (sorted, disjoint, widened to `blockSize` and clipped to the file size), or undefined
 * when they cannot be had without reading the file.
 */
export function dataExtents(path: string, opts: { blockSize?: number; size?: number } = {}): ByteRange[] | undefined {
  const w = whence();
  if (!w || perlMissing || process.env.PI_IMAGE_NO_SEEK_DATA === '1') return undefined;
  if (!statSync(path).isFile()) return undefined; // a block device: st_size is 0 and lseek cannot tell
  const r = spawnSync('perl', ['-e', SCRIPT, path, String(w.data), String(w.hole)], { encoding: 'latin1', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') perlMissing = true;
    return undefined;
  }
  if (r.status !== 0) return undefined;
  const lines = r.stdout.split('\n');
  if (lines[lines.length - 2] !== 'end') return undefined; // cut short: do not trust a partial list
  const bs = opts.blockSize ?? 4096;
  const out: ByteRange[] = [];
  for (const line of lines.slice(0, -2)) {
    const sp = line.indexOf(' ');
    let start = Math.floor(Number(line.slice(0, sp)) / bs) * bs;
    let end = Math.ceil(Number(line.slice(sp + 1)) / bs) * bs;
    if (opts.size !== undefined) end = Math.min(end, opts.size);
    if (!(end > start)) continue;
    const prev = out[out.length - 1];
    if (prev && start <= prev.start + prev.length) {
      start = prev.start;
      prev.length = Math.max(prev.length, end - start);
    } else out.push({ start, length: end - start });
  }
  return out;
}
