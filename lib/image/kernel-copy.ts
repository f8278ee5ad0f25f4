// Byte ranges of one file copied into others by the kernel: copy_file_range(2), walked by a tiny perl helper process
// (Node has no binding for it; perl for the reasons in extents.ts). Where the file system can (XFS, btrfs), the
// kernel shares the blocks (a reflink: nothing is written); elsewhere (ext4) it copies them without passing them
// through this process. Either way the data never enters the V8 heap, and the holes of the source stay holes.
// Invariants:
// - Each destination ends up with exactly the source's bytes in the ranges (shifted by `delta`) and is not touched
//   elsewhere: the ranges are clipped to the source's data (SEEK_DATA / SEEK_HOLE), so a hole inside a range is
//   left a hole, which reads as the zeros it is.
// - Each destination is written in ascending order, one after the other: on ext4, writing into holes below a
//   file's end costs several times writing at its end (see FileIO.create), so callers hand over files that end
//   before the first range.
// - False when the kernel or the helper cannot (not Linux, no perl, an old kernel, another file system in between)
//   or an I/O error stopped it: the caller copies the ranges itself, after recreating the destinations.
//   PI_IMAGE_NO_KERNEL_COPY=1 forces that.
import { spawn, spawnSync } from 'node:child_process';
import type { ByteRange } from './sparse.ts';

/** copy_file_range's number, per Linux architecture (the generic table serves arm64, riscv64, loong64). */
const SYSCALL: Partial<Record<NodeJS.Architecture, number>> = { x64: 326, arm64: 285, riscv64: 285, loong64: 285, ppc64: 379, s390x: 375 };

// argv: syscall number, SEEK_DATA, SEEK_HOLE, block size, delta, source, destinations...; stdin: "start length" per
// range.
// Exit 3: the kernel or file system cannot (ENOSYS, EXDEV, EINVAL, EOPNOTSUPP): copy another way.
const SCRIPT = `# copy_file_range(2) over the data of each range, into each destination in turn
use strict; use POSIX ();
my ($nr, $D, $H, $B, $delta, $src, @dsts) = @ARGV; $nr += 0; $B += 0; $delta += 0;
my %cannot = map { $_ => 1 } (POSIX::ENOSYS, POSIX::EXDEV, POSIX::EINVAL, POSIX::EOPNOTSUPP);
open(my $in, '<', $src) or do { print STDERR "$src: $!\\n"; exit 2 };
local $/; my $list = <STDIN>; my @pieces;
for my $line (split /\\n/, $list) {
  my ($s, $n) = split / /, $line; my $pos = $s + 0; my $end = $pos + $n;
  while ($pos < $end) {
    my $d = sysseek($in, $pos, $D);
    if (!defined $d) { last if $! == POSIX::ENXIO; exit 3 if $! == POSIX::EINVAL; print STDERR "$src: $!\\n"; exit 4 }
    $d += 0; last if $d >= $end;
    my $h = sysseek($in, $d, $H); $h = defined $h ? $h + 0 : $end; $h = $end if $h > $end;
    # Whole blocks at both ends can be shared (a reflink needs block-aligned offsets and length); the parts of a
    # block at either end are copied.
    my ($a, $b) = (($d + $B - 1) - ($d + $B - 1) % $B, $h - $h % $B);
    if ($a < $b) { push @pieces, $d, $a - $d if $a > $d; push @pieces, $a, $b - $a; push @pieces, $b, $h - $b if $h > $b }
    else { push @pieces, $d, $h - $d }
    $pos = $h;
  }
}
for my $dst (@dsts) {
  open(my $out, '+<', $dst) or do { print STDERR "$dst: $!\\n"; exit 2 };
  for (my $i = 0; $i < @pieces; $i += 2) {
    my ($off, $left) = ($pieces[$i] + 0, $pieces[$i + 1] + 0);
    while ($left > 0) {
      my ($pin, $pout) = (pack('q', $off), pack('q', $off + $delta));
      my $n = syscall($nr, fileno($in), $pin, fileno($out), $pout, $left, 0);
      if ($n < 0) { exit 3 if $cannot{$! + 0}; print STDERR "$dst: $!\\n"; exit 4 }
      if ($n == 0) { print STDERR "$src: ends early\\n"; exit 4 }
      $off += $n; $left -= $n;
    }
  }
  close($out) or do { print STDERR "$dst: $!\\n"; exit 4 };
}
exit 0;
`;

/** Reflinks share whole blocks: 4 KiB covers XFS and btrfs on x86 and arm64, and ext4's usual block. */
const BLOCK = 4096;

let unavailable = false;

/** The helper's argv and stdin, or undefined where it cannot run here. */
function helper(src: string, dsts: string[], ranges: readonly ByteRange[], delta: number): { args: string[]; input: string } | undefined {
  const nr = SYSCALL[process.arch];
  if (process.platform !== 'linux' || nr === undefined || unavailable || process.env.PI_IMAGE_NO_KERNEL_COPY === '1') return undefined;
  return {
    args: ['-e', SCRIPT, String(nr), '3', '4', String(BLOCK), String(delta), src, ...dsts],
    input: ranges.map((r) => `${r.start} ${r.length}`).join('\n'),
  };
}

/**
 * Copy `ranges` of `src` (sorted, disjoint) into every one of `dsts` (existing files) at the same offsets plus
 * `delta`, in the kernel. True when every destination holds them; false when they could not be copied so (copy them
 * yourself: that also reports a real I/O error, by the file's name).
 */
export function copyRangesInKernel(src: string, dsts: string[], ranges: readonly ByteRange[], opts: { delta?: number } = {}): boolean {
  const h = helper(src, dsts, ranges, opts.delta ?? 0);
  if (!h) return false;
  if (dsts.length === 0 || ranges.length === 0) return true;
  const r = spawnSync('perl', h.args, { input: h.input, encoding: 'latin1', stdio: ['pipe', 'ignore', 'pipe'], maxBuffer: 1 << 20 });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') unavailable = true;
    return false;
  }
  // 3: not for these files (another file system, an old kernel); anything else (ENOSPC, EIO) the caller's own copy
  // meets again and reports, naming the file.
  return r.status === 0;
}

/** copyRangesInKernel without blocking this thread: the same answer, later; `stop` kills the helper (then false). */
export function startCopyInKernel(src: string, dsts: string[], ranges: readonly ByteRange[]): { done: Promise<boolean>; stop: () => void } {
  const h = helper(src, dsts, ranges, 0);
  if (!h) return { done: Promise.resolve(false), stop: () => {} };
  if (dsts.length === 0 || ranges.length === 0) return { done: Promise.resolve(true), stop: () => {} };
  const child = spawn('perl', h.args, { stdio: ['pipe', 'ignore', 'ignore'] });
  const done = new Promise<boolean>((resolve) => {
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') unavailable = true;
      resolve(false);
    });
    child.on('close', (code) => resolve(code === 0));
  });
  child.stdin.on('error', () => {}); // a helper that exits early closes its end: its exit status says the rest
  child.stdin.end(h.input);
  return { done, stop: () => child.kill('SIGKILL') };
}
