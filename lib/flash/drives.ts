// What block devices this machine has (lsblk's JSON on Linux) and what a flash target is: a block device (with its
// model, size, mount points, and the disk it belongs to) or a regular file. Read-only: nothing here writes.
import { execFileSync } from 'node:child_process';
import { statSync, realpathSync, type Stats } from 'node:fs';
import { InputError } from '../errors.ts';

export interface Drive {
  /** /dev/sdb */
  path: string;
  name: string;
  /** 'disk', 'part', 'loop', 'rom', … */
  type: string;
  size: number;
  model?: string;
  vendor?: string;
  serial?: string;
  removable: boolean;
  hotplug: boolean;
  readOnly: boolean;
  /** 'usb', 'sata', 'nvme', 'mmc', … when known. */
  transport?: string;
  majMin: string;
  /** Mount points of this device and of every partition on it ('[SWAP]' for active swap). */
  mountpoints: string[];
  /** Partitions (and other children) with their own mount points. */
  children: { path: string; majMin: string; mountpoints: string[]; fstype?: string }[];
}

interface LsblkNode {
  name: string;
  path?: string;
  type: string;
  size: number | string;
  model?: string | null;
  vendor?: string | null;
  serial?: string | null;
  rm: boolean | string;
  hotplug?: boolean | string;
  ro: boolean | string;
  tran?: string | null;
  'maj:min': string;
  mountpoints?: (string | null)[];
  mountpoint?: string | null;
  fstype?: string | null;
  children?: LsblkNode[];
}

const PATH_ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };
const bool = (v: unknown) => v === true || v === '1' || v === 1;
const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);

function mounts(n: LsblkNode): string[] {
  const list = n.mountpoints ?? (n.mountpoint !== undefined ? [n.mountpoint] : []);
  return list.filter((m): m is string => typeof m === 'string' && m !== '');
}

function flatten(n: LsblkNode): LsblkNode[] {
  return [n, ...(n.children ?? []).flatMap(flatten)];
}

function toDrive(n: LsblkNode): Drive {
  const below = (n.children ?? []).flatMap(flatten);
  return {
    path: n.path ?? `/dev/${n.name}`,
    name: n.name,
    type: n.type,
    size: Number(n.size),
    model: str(n.model),
    vendor: str(n.vendor),
    serial: str(n.serial),
    removable: bool(n.rm),
    hotplug: bool(n.hotplug),
    readOnly: bool(n.ro),
    transport: str(n.tran),
    majMin: n['maj:min'],
    mountpoints: [...mounts(n), ...below.flatMap(mounts)],
    children: below.map((c) => ({ path: c.path ?? `/dev/${c.name}`, majMin: c['maj:min'], mountpoints: mounts(c), fstype: str(c.fstype) })),
  };
}

function lsblk(args: string[]): LsblkNode[] {
  const cols = 'NAME,PATH,TYPE,SIZE,MODEL,VENDOR,SERIAL,RM,HOTPLUG,RO,TRAN,MAJ:MIN,MOUNTPOINTS,FSTYPE';
  let text: string;
  try {
    text = execFileSync('lsblk', ['-J', '-b', '-o', cols, ...args], { env: PATH_ENV, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    // util-linux before 2.37 has MOUNTPOINT only.
    const msg = String((err as { stderr?: Buffer }).stderr ?? err);
    if (!/unknown column/i.test(msg)) throw new InputError(`lsblk failed: ${msg.trim()}`, 'pi-image drives needs lsblk (util-linux) on Linux.');
    text = execFileSync('lsblk', ['-J', '-b', '-o', cols.replace('MOUNTPOINTS', 'MOUNTPOINT'), ...args], { env: PATH_ENV }).toString();
  }
  return (JSON.parse(text) as { blockdevices: LsblkNode[] }).blockdevices;
}

/** Every top-level block device (disks, loop devices, …) with its partitions' mount points. */
export function listDrives(): Drive[] {
  return lsblk([]).map(toDrive);
}

/** 'major:minor' of a device number as Linux encodes it. */
export function majMinOf(dev: number): string {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** The top-level drive holding a device or partition, given its maj:min or path. */
export function driveHolding(drives: Drive[], id: { majMin?: string; path?: string }): Drive | undefined {
  return drives.find(
    (d) =>
      (id.majMin && (d.majMin === id.majMin || d.children.some((c) => c.majMin === id.majMin))) ||
      (id.path && (d.path === id.path || d.children.some((c) => c.path === id.path))),
  );
}

/** The source device of the filesystem a path lives on, as findmnt sees it (e.g. /dev/vda2), if any. */
export function mountSourceOf(path: string): { source?: string; majMin?: string } {
  try {
    const j = JSON.parse(
      execFileSync('findmnt', ['-J', '-o', 'SOURCE,MAJ:MIN', '--target', path], { env: PATH_ENV, stdio: ['ignore', 'pipe', 'ignore'] }).toString(),
    ) as { filesystems: { source: string; 'maj:min': string }[] };
    const fs = j.filesystems[0];
    return { source: fs?.source?.replace(/\[.*\]$/, ''), majMin: fs?.['maj:min'] };
  } catch {
    return {};
  }
}

/** Drives holding a path: by its st_dev, and by the device its filesystem is mounted from. */
export function drivesHoldingPath(drives: Drive[], path: string, st?: Stats): Drive[] {
  const out = new Set<Drive>();
  const s = st ?? statSync(path);
  if (s.isBlockDevice()) {
    const d = driveHolding(drives, { majMin: majMinOf(s.rdev), path: realpathSync(path) });
    if (d) out.add(d);
  } else {
    const d = driveHolding(drives, { majMin: majMinOf(s.dev) });
    if (d) out.add(d);
  }
  const m = mountSourceOf(path);
  const d2 = driveHolding(drives, { majMin: m.majMin, path: m.source });
  if (d2) out.add(d2);
  return [...out];
}

/** The drives that hold the running system: '/', /boot, /boot/efi, /usr, /var and active swap. */
export function systemDrives(drives: Drive[]): Drive[] {
  const system = new Set(['/', '/boot', '/boot/efi', '/boot/firmware', '/usr', '/var', '[SWAP]']);
  const out = new Set(drives.filter((d) => d.mountpoints.some((m) => system.has(m))));
  for (const d of drivesHoldingPath(drives, '/')) out.add(d);
  return [...out];
}

export type Target =
  | { kind: 'missing'; path: string }
  | { kind: 'file'; path: string; size: number; stats: Stats }
  | { kind: 'device'; path: string; size: number; drive: Drive; stats: Stats; partition: boolean }
  | { kind: 'other'; path: string; stats: Stats };

/** What a flash target path is. A device is looked up in lsblk for size, model and mount points. */
export function describeTarget(path: string, drives?: Drive[]): Target {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing', path };
    throw err;
  }
  if (st.isFile()) return { kind: 'file', path, size: st.size, stats: st };
  if (!st.isBlockDevice()) return { kind: 'other', path, stats: st };
  const all = drives ?? listDrives();
  const real = realpathSync(path);
  const majMin = majMinOf(st.rdev);
  const drive = driveHolding(all, { majMin, path: real });
  if (!drive) throw new InputError(`${path}: block device not listed by lsblk`, 'Run pi-image drives to see the candidates.');
  const partition = drive.majMin !== majMin;
  const size = partition ? Number(lsblk([real])[0]?.size ?? 0) : drive.size;
  return { kind: 'device', path, size, drive, stats: st, partition };
}
