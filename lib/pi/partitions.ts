// The one place that says which partitions of a Pi image are the boot (FAT) and the root (ext4) partition, for
// build, netboot, lock and inspect alike, whatever the table (MBR or GPT, lib/image/partition-table.ts).
// - With the catalog's boot spec: its bootPartition / rootPartition numbers.
// - Without one (an image the catalog does not know): by content, the first FAT partition and the last ext4 one.
// - `probe` says what a partition holds (lib/image/probe.ts over the caller's reads); when given, a numbered
//   partition must hold the right filesystem. Without it (an image still being decompressed), numbers are trusted
//   and the filesystem readers name a wrong partition later.
// Pure: no I/O here; errors are CorruptImageError naming the image as the caller calls it.
import { CorruptImageError } from '../errors.ts';
import type { Partition, PartitionTable } from '../image/partition-table.ts';
import type { FsKind } from '../image/probe.ts';
import type { BootSpec } from '../source/catalog.ts';

export type PartitionRole = 'boot' | 'root';

/** What the locator reads of a partition: a table's, or the cache record's form of it (lib/source). */
export type Locatable = Pick<Partition, 'index' | 'start'> & { extended?: boolean };

export interface LocateOptions<P extends Locatable = Partition> {
  /** The image as the user named it (error messages). */
  name: string;
  /** The catalog entry's boot spec; undefined: find by content (needs `probe`). */
  spec?: Pick<BootSpec, 'bootPartition' | 'rootPartition'>;
  /** What a partition holds, by its first bytes. */
  probe?: (p: P) => FsKind;
}

const WANT: Record<PartitionRole, FsKind> = { boot: 'vfat', root: 'ext4' };
const WHAT: Record<PartitionRole, string> = { boot: 'a FAT boot partition', root: 'an ext4 root partition' };

/** Locate one of the two partitions (see the header). */
export function locatePartition<P extends Locatable>(table: { partitions: P[]; scheme?: PartitionTable['scheme'] }, role: PartitionRole, opts: LocateOptions<P>): P {
  const parts = table.partitions.filter((p) => !p.extended);
  if (opts.spec) {
    const n = role === 'boot' ? opts.spec.bootPartition : opts.spec.rootPartition;
    const p = parts.find((x) => x.index === n);
    if (!p) throw new CorruptImageError(`${opts.name}: no partition ${n} (${role}); the catalog entry says it should be there`);
    if (opts.probe) {
      const kind = opts.probe(p);
      if (kind !== WANT[role]) {
        throw new CorruptImageError(`${opts.name}: partition ${n} (${role}) holds ${kind === 'unknown' ? 'no FAT or ext4 filesystem' : kind}, not ${WHAT[role]}`, p.start);
      }
    }
    return p;
  }
  if (!opts.probe) throw new Error('locatePartition: without a catalog boot spec, a probe is needed');
  const found = parts.filter((p) => opts.probe!(p) === WANT[role]);
  const p = role === 'boot' ? found[0] : found.at(-1);
  if (!p) {
    throw new CorruptImageError(
      `${opts.name}: no ${role} partition: need ${WHAT[role]} in its ${table.scheme ? table.scheme.toUpperCase() : 'partition table'} (partitions: ${parts.map((x) => x.index).join(', ') || 'none'})`,
      0,
      'Is this a Raspberry Pi OS image (FAT boot + ext4 root)?',
    );
  }
  return p;
}

/** Locate both the boot and the root partition. */
export function locateBootRoot<P extends Locatable>(table: { partitions: P[]; scheme?: PartitionTable['scheme'] }, opts: LocateOptions<P>): { boot: P; root: P } {
  return { boot: locatePartition(table, 'boot', opts), root: locatePartition(table, 'root', opts) };
}
