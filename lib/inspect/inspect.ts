// `inspect` as a library call: what is in a disk image — the partition table, each filesystem (label, size, used
// space), for a Pi boot partition the kernel / cmdline / initramfs config.txt selects and the cloud-init seed, for
// an ext4 root its os-release and fstab. Returns a typed report; the CLI only formats it.
import { parse as parseYaml } from 'yaml';
import { FileIO, type BlockIO } from '../image/io.ts';
import { readTable, partitionIO, type TableScheme } from '../image/partition-table.ts';
import { resolveBootConfig } from '../pi/config-txt.ts';
import { kernelKind, type KernelKind } from '../pi/kernel.ts';
import { detectFs, partitionTypeName } from './detect.ts';
import { openVolume, readSmallText, FAT_TYPES, type Volume } from './volume.ts';

export interface SeedReport {
  /** user-data and meta-data both present: NoCloud will use this partition (with the right label). */
  present: boolean;
  userData: boolean;
  metaData: boolean;
  networkConfig: boolean;
  /** meta-data `instance-id` (cloud-init re-runs only when it changes). */
  instanceId?: string;
  localHostname?: string;
  /** user-data starts with `#cloud-config`. */
  cloudConfig?: boolean;
  /** Problems cloud-init would not tell you about (a misspelt `instance_id:` key, a wrong label). */
  notes: string[];
}

export interface PiBootReport {
  model: string;
  kernel: string;
  kernelPresent: boolean;
  /** gzip / arm64-image / unknown, from the kernel file's first bytes. */
  kernelKind?: KernelKind;
  initramfs?: { file: string; address: string; present: boolean };
  cmdlineFile: string;
  cmdline: string;
  cmdlineFound: boolean;
  /** Config files read in order (config.txt first). */
  configFiles: string[];
  userConfigFile?: string;
  /** Other cmdline-looking files config.txt does not use (e.g. a stray cmdline.txt). */
  unusedCmdlineFiles: string[];
  missing: string[];
  warnings: string[];
  seed: SeedReport;
}

export interface FstabEntry {
  spec: string;
  file: string;
  vfstype: string;
  options: string;
  freq: number;
  passno: number;
}

export interface RootReport {
  prettyName?: string;
  osRelease?: Record<string, string>;
  fstab?: FstabEntry[];
  hostname?: string;
  /** The cloud-init datasource config files in etc/cloud/cloud.cfg.d/. */
  cloudConfigFiles?: string[];
}

export interface PartitionReport {
  number: number;
  type: number;
  /** Two-digit hex, as sfdisk prints it ('c', '83' → '0c', '83'). */
  typeHex: string;
  typeName: string;
  /** GPT: the type GUID (`type` is then the MBR code of the same kind, 0 when none) and the partition name. */
  typeGuid?: string;
  name?: string;
  bootable: boolean;
  startLba: number;
  sectors: number;
  /** Byte offset and size. */
  start: number;
  size: number;
  partuuid: string;
  filesystem: 'vfat' | 'ext4' | 'extended' | 'unknown';
  label?: string;
  fsSize?: number;
  usedBytes?: number;
  fatType?: 12 | 16 | 32;
  ext4?: { blockSize: number; uuid: string; features: string[] };
  piBoot?: PiBootReport;
  root?: RootReport;
}

export interface InspectReport {
  image: string;
  size: number;
  table: TableScheme;
  /** The disk id: the MBR disk signature (8 hex digits) or the GPT disk GUID. */
  diskSignature: string;
  partitions: PartitionReport[];
  /** Bytes after the last partition (0 when it ends the image). */
  unpartitionedTail: number;
}

export interface InspectOptions {
  /** Pi model whose config sections count (default pi4). */
  model?: string;
}

function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2].trim();
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

export function parseFstab(text: string): FstabEntry[] {
  const out: FstabEntry[] = [];
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const f = t.split(/\s+/);
    if (f.length < 2) continue;
    out.push({ spec: f[0], file: f[1], vfstype: f[2] ?? 'auto', options: f[3] ?? 'defaults', freq: Number(f[4] ?? 0), passno: Number(f[5] ?? 0) });
  }
  return out;
}

function seedReport(v: Volume): SeedReport {
  const userData = readSmallText(v, 'user-data');
  const metaData = readSmallText(v, 'meta-data');
  const notes: string[] = [];
  const r: SeedReport = {
    present: userData !== undefined && metaData !== undefined,
    userData: userData !== undefined,
    metaData: metaData !== undefined,
    networkConfig: v.isFile('network-config'),
    notes,
  };
  if (userData !== undefined) r.cloudConfig = userData.startsWith('#cloud-config');
  if (metaData !== undefined) {
    try {
      const doc = parseYaml(metaData, { version: '1.1' }) as Record<string, unknown> | null;
      if (doc && typeof doc === 'object') {
        if (doc['instance-id'] !== undefined) r.instanceId = String(doc['instance-id']);
        if (doc['local-hostname'] !== undefined) r.localHostname = String(doc['local-hostname']);
        if (doc['instance-id'] === undefined && doc.instance_id !== undefined) {
          notes.push(`meta-data has "instance_id: ${String(doc.instance_id)}" (misspelt; cloud-init reads "instance-id")`);
        }
      }
    } catch (e) {
      notes.push(`meta-data is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  if (r.present && v.label.toLowerCase() !== 'system-boot' && v.label.toLowerCase() !== 'cidata') {
    notes.push(`filesystem label is "${v.label}"; the NoCloud datasource looks for "cidata" or the configured fs_label`);
  }
  return r;
}

function piBootReport(v: Volume, model: string): PiBootReport {
  const read = (name: string): string | undefined => readSmallText(v, name);
  const cfg = resolveBootConfig(read, model);
  const kernelPresent = v.isFile(cfg.kernel);
  const report: PiBootReport = {
    model,
    kernel: cfg.kernel,
    kernelPresent,
    cmdlineFile: cfg.cmdlineFile,
    cmdline: cfg.cmdline,
    cmdlineFound: cfg.cmdlineFound,
    configFiles: cfg.filesRead.slice(0, -1),
    missing: cfg.missing,
    warnings: cfg.warnings,
    unusedCmdlineFiles: [],
    seed: seedReport(v),
  };
  if (kernelPresent && v.stat(cfg.kernel).size >= 64) {
    const first = v.readChunks(cfg.kernel)[Symbol.iterator]().next();
    if (!first.done) report.kernelKind = kernelKind(first.value.subarray(0, 64));
  }
  if (cfg.initramfs) report.initramfs = { ...cfg.initramfs, present: v.isFile(cfg.initramfs.file) };
  if (cfg.userConfigFile) report.userConfigFile = cfg.userConfigFile;
  for (const e of v.list('/')) {
    const n = e.name.toLowerCase();
    if (e.type === 'file' && /^(cmdline|nobtcmd|btcmd)\.txt$/.test(n) && n !== cfg.cmdlineFile.toLowerCase()) report.unusedCmdlineFiles.push(e.name);
  }
  return report;
}

function rootReport(v: Volume): RootReport | undefined {
  const osText = readSmallText(v, '/etc/os-release') ?? readSmallText(v, '/usr/lib/os-release');
  const fstabText = readSmallText(v, '/etc/fstab');
  if (osText === undefined && fstabText === undefined) return undefined;
  const r: RootReport = {};
  if (osText !== undefined) {
    r.osRelease = parseKeyValues(osText);
    r.prettyName = r.osRelease.PRETTY_NAME ?? r.osRelease.NAME;
  }
  if (fstabText !== undefined) r.fstab = parseFstab(fstabText);
  const hostname = readSmallText(v, '/etc/hostname');
  if (hostname !== undefined) r.hostname = hostname.trim();
  if (v.exists('/etc/cloud/cloud.cfg.d')) {
    r.cloudConfigFiles = v.list('/etc/cloud/cloud.cfg.d').filter((e) => e.type === 'file').map((e) => e.name).sort();
  }
  return r;
}

function ext4Features(f: NonNullable<Volume['ext4']>['info']['features']): string[] {
  const out: string[] = [];
  if (f.has64bit) out.push('64bit');
  if (f.extents) out.push('extents');
  if (f.flexBg) out.push('flex_bg');
  if (f.metadataCsum) out.push('metadata_csum');
  if (f.htree) out.push('dir_index');
  if (f.inlineData) out.push('inline_data');
  return out;
}

/** Inspect a disk image already opened as a BlockIO. */
export function inspectIO(disk: BlockIO, opts: InspectOptions = {}): InspectReport {
  const model = opts.model ?? 'pi4';
  const table = readTable(disk);
  const partitions: PartitionReport[] = [];
  let end = 0;
  for (const p of table.partitions) {
    end = Math.max(end, p.start + p.size);
    const r: PartitionReport = {
      number: p.index,
      type: p.type,
      typeHex: p.type.toString(16).padStart(2, '0'),
      typeName: partitionTypeName(p),
      ...(p.typeGuid ? { typeGuid: p.typeGuid } : {}),
      ...(p.name ? { name: p.name } : {}),
      bootable: p.bootable,
      startLba: p.startLba,
      sectors: p.sectors,
      start: p.start,
      size: p.size,
      partuuid: p.uuid,
      filesystem: p.extended ? 'extended' : 'unknown',
    };
    partitions.push(r);
    if (p.extended) continue;
    // A partition with neither filesystem stays 'unknown' — but a Linux (0x83) one must be ext4 here and a FAT-typed
    // one FAT: a damaged superblock or boot sector is an error (openVolume lets the reader name it).
    if (detectFs(partitionIO(disk, p)) === 'unknown' && p.type !== 0x83 && !FAT_TYPES.has(p.type)) continue;
    const v = openVolume(disk, p);
    r.filesystem = v.kind;
    r.label = v.label;
    r.fsSize = v.totalBytes;
    r.usedBytes = v.usedBytes;
    if (v.fat) {
      v.fat.checkTree(); // a boot tree is small: walk it all, so a directory loop is reported, not shown as sane
      r.fatType = v.fat.fatType;
      if (v.isFile('config.txt') || v.isFile('start4.elf') || v.isFile('bootcode.bin')) r.piBoot = piBootReport(v, model);
    }
    if (v.ext4) {
      r.ext4 = { blockSize: v.ext4.info.blockSize, uuid: v.ext4.info.uuid, features: ext4Features(v.ext4.info.features) };
      const root = rootReport(v);
      if (root) r.root = root;
    }
  }
  return {
    image: disk.name,
    size: disk.size,
    table: table.scheme,
    diskSignature: table.diskId,
    partitions,
    unpartitionedTail: Math.max(0, disk.size - end),
  };
}

/** Inspect the disk image at `path` (read-only; nothing is written). */
export function inspectImage(path: string, opts: InspectOptions = {}): InspectReport {
  const io = FileIO.open(path);
  try {
    return inspectIO(io, opts);
  } finally {
    io.close();
  }
}
