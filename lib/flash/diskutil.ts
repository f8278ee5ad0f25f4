// The drives of a Mac, from `diskutil list -plist` and `diskutil info -plist <disk>` (what lsblk is on Linux).
// Pure parsing apart from the two runners at the end: parsePlist reads Apple's XML property list format,
// drivesFromDiskutil turns the two documents into the same Drive records lsblk gives, so `pi-image drives` and the
// safety rules see a Mac's disks the same way.
// Invariants: read-only (diskutil list/info write nothing); APFS containers and disk images are listed as
// 'virtual' / 'image' (not flash targets by default); a physical disk carries the mount points of every APFS
// volume (and mounted snapshot, e.g. the sealed system at /) whose container lives on it.
import { execFileSync } from 'node:child_process';
import { InputError } from '../errors.ts';
import type { Drive } from './drives.ts';

export type PlistValue = string | number | boolean | Date | Buffer | PlistValue[] | { [key: string]: PlistValue };

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const unescape = (s: string): string =>
  s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e: string) =>
    e[0] === '#' ? String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)) : (ENTITIES[e] ?? m),
  );

/** Parse an XML property list (the format of `diskutil … -plist`). Throws with the byte offset of a bad tag. */
export function parsePlist(xml: string): PlistValue {
  const tag = /<(\/?)([a-zA-Z]+)(?:\s+[^>]*?)?(\s*\/)?>|<\?[^>]*\?>|<!DOCTYPE[^>]*>|<!--[\s\S]*?-->/g;
  let m: RegExpExecArray | null;
  const next = (): { close: boolean; name: string; empty: boolean; at: number; end: number } | undefined => {
    for (;;) {
      m = tag.exec(xml);
      if (!m) return undefined;
      if (m[2]) return { close: m[1] === '/', name: m[2], empty: m[3] !== undefined, at: m.index, end: tag.lastIndex };
    }
  };
  const fail = (what: string, at: number): never => {
    throw new InputError(`diskutil plist: ${what} at byte offset ${at}`);
  };
  const text = (name: string, start: number): string => {
    const close = xml.indexOf(`</${name}>`, start);
    if (close < 0) fail(`<${name}> is not closed`, start);
    tag.lastIndex = close + name.length + 3;
    return unescape(xml.slice(start, close));
  };
  const value = (t: ReturnType<typeof next>): PlistValue => {
    if (!t || t.close) return fail('expected a value', t?.at ?? xml.length);
    switch (t.name) {
      case 'dict': {
        const out: { [key: string]: PlistValue } = {};
        if (t.empty) return out;
        for (;;) {
          const k = next();
          if (k?.close && k.name === 'dict') return out;
          if (!k || k.name !== 'key') return fail('expected <key> in <dict>', k?.at ?? xml.length);
          const key = text('key', k.end);
          out[key] = value(next());
        }
      }
      case 'array': {
        const out: PlistValue[] = [];
        if (t.empty) return out;
        for (;;) {
          const v = next();
          if (v?.close && v.name === 'array') return out;
          out.push(value(v));
        }
      }
      case 'string':
        return t.empty ? '' : text('string', t.end);
      case 'integer':
      case 'real': {
        const s = text(t.name, t.end).trim();
        const n = Number(s);
        if (s === '' || !Number.isFinite(n)) fail(`<${t.name}> ${JSON.stringify(s)} is not a number`, t.at);
        return n;
      }
      case 'true':
      case 'false':
        if (!t.empty) text(t.name, t.end);
        return t.name === 'true';
      case 'date':
        return new Date(text('date', t.end).trim());
      case 'data':
        return Buffer.from(text('data', t.end).replace(/\s+/g, ''), 'base64');
      case 'plist': {
        const v = value(next());
        const end = next();
        if (!end?.close || end.name !== 'plist') fail('expected </plist>', end?.at ?? xml.length);
        return v;
      }
      default:
        return fail(`unknown tag <${t.name}>`, t.at);
    }
  };
  return value(next());
}

type Dict = { [key: string]: PlistValue };
const dict = (v: PlistValue | undefined): Dict => (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !Buffer.isBuffer(v) ? v : {});
const list = (v: PlistValue | undefined): Dict[] => (Array.isArray(v) ? v.map(dict) : []);
const s = (v: PlistValue | undefined): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
const n = (v: PlistValue | undefined): number => (typeof v === 'number' ? v : 0);

/** diskutil's BusProtocol as the transport names lsblk uses. */
function transportOf(bus: string | undefined): string | undefined {
  if (!bus) return undefined;
  const b = bus.toLowerCase();
  if (b === 'usb') return 'usb';
  if (b.includes('secure digital') || b === 'sd') return 'mmc';
  if (b === 'sata' || b === 'ata') return 'sata';
  if (b.includes('pci') || b.includes('nvme')) return 'nvme';
  if (b.includes('thunderbolt')) return 'thunderbolt';
  if (b.includes('fabric')) return 'internal';
  if (b.includes('disk image')) return 'image';
  return b;
}

/** Mount points of a volume or partition entry, mounted snapshots included (the sealed system volume is one). */
function mountsOf(e: Dict): string[] {
  const out: string[] = [];
  const mp = s(e.MountPoint);
  if (mp) out.push(mp);
  for (const snap of list(e.MountedSnapshots)) {
    const sp = s(snap.SnapshotMountPoint);
    if (sp) out.push(sp);
  }
  return out;
}

/**
 * Drives from `diskutil list -plist` and, per whole disk, `diskutil info -plist` (keyed by DeviceIdentifier; a
 * missing info leaves model, transport and flags unknown).
 */
export function drivesFromDiskutil(listing: PlistValue, infos: Record<string, PlistValue> = {}): Drive[] {
  const disks = list(dict(listing).AllDisksAndPartitions);
  // Which physical partition each APFS container lives on: the container's volumes count as mounted there.
  const containerMounts = new Map<string, string[]>();
  for (const d of disks) {
    const stores = list(d.APFSPhysicalStores).map((p) => s(p.DeviceIdentifier)).filter((x): x is string => x !== undefined);
    const mounts = [...mountsOf(d), ...list(d.APFSVolumes).flatMap(mountsOf)];
    for (const st of stores) containerMounts.set(st, [...(containerMounts.get(st) ?? []), ...mounts]);
  }
  return disks.map((d) => {
    const id = s(d.DeviceIdentifier) ?? '?';
    const info = dict(infos[id]);
    const parts = list(d.Partitions);
    const volumes = list(d.APFSVolumes);
    const virtual = volumes.length > 0 || list(d.APFSPhysicalStores).length > 0 || s(info.VirtualOrPhysical) === 'Virtual';
    const transport = transportOf(s(info.BusProtocol));
    const children = [...parts, ...volumes].map((p) => {
      const pid = s(p.DeviceIdentifier) ?? '?';
      return { path: `/dev/${pid}`, majMin: '', mountpoints: [...mountsOf(p), ...(containerMounts.get(pid) ?? [])], fstype: s(p.Content) };
    });
    return {
      path: s(info.DeviceNode) ?? `/dev/${id}`,
      name: id,
      type: transport === 'image' ? 'image' : virtual ? 'virtual' : 'disk',
      size: n(info.TotalSize) || n(info.Size) || n(d.Size),
      model: s(info.MediaName) ?? s(info.IORegistryEntryName),
      vendor: undefined,
      serial: undefined,
      removable: info.RemovableMedia === true || info.Removable === true || info.Ejectable === true,
      hotplug: info.Internal === false,
      readOnly: info.WritableMedia === false || info.Writable === false,
      transport,
      majMin: '',
      mountpoints: [...mountsOf(d), ...children.flatMap((c) => c.mountpoints)],
      children,
    };
  });
}

function diskutil(args: string[]): PlistValue {
  let text: string;
  try {
    text = execFileSync('diskutil', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (err) {
    const msg = String((err as { stderr?: Buffer }).stderr ?? err).trim();
    throw new InputError(`diskutil ${args.join(' ')} failed: ${msg}`, 'pi-image drives on macOS needs /usr/sbin/diskutil.');
  }
  return parsePlist(text);
}

/** Every disk of this Mac, from diskutil (macOS only). */
export function listDrivesMac(): Drive[] {
  const listing = diskutil(['list', '-plist']);
  const infos: Record<string, PlistValue> = {};
  for (const d of list(dict(listing).AllDisksAndPartitions)) {
    const id = s(d.DeviceIdentifier);
    if (id) infos[id] = diskutil(['info', '-plist', id]);
  }
  return drivesFromDiskutil(listing, infos);
}
