// The netboot pipeline: from a base Ubuntu Pi image, per board a TFTP directory (firmware, dtbs, overlays,
// config.txt for direct kernel boot, an NFS-root cmdline, vmlinux, initrd + overlay; files common to all boards
// written once and hard-linked), per node an NFS root (directory or tar) with its seed in /boot/firmware, plus the
// dnsmasq config, exports lines and EEPROM settings. Takes plain inputs; the CLI maps the profile onto them.
// A node with a bundle (its role's share of pi-image.lock) gets the very tar build writes on SSD partition 2 as a
// file of its NFS root, NETBOOT_BUNDLE_PATH, streamed in with the rest of the root (docs/netboot.md says why there).
import { mkdirSync, openSync, writeSync, closeSync, linkSync, copyFileSync, rmSync, renameSync, existsSync, readdirSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { FileIO, type BlockIO } from '../image/io.ts';
import { readTable, partitionIO } from '../image/partition-table.ts';
import { partitionProbe } from '../image/probe.ts';
import { DEFAULT_BOOT, type BootSpec } from '../source/catalog.ts';
import { FatFs } from '../image/fat/index.ts';
import { Ext4Fs } from '../image/ext4/index.ts';
import { resolveBootConfig, editConfigForDirectBoot, editCmdline, extractKernel, locateBootRoot } from '../pi/index.ts';
import { CorruptImageError, InputError, NotFoundError, atPath } from '../errors.ts';
import type { OnProgress } from '../progress.ts';
import { processAlive } from '../pid.ts';
import { exportDir, exportTar, type FileOverride, type ExportResult } from './export-root.ts';
import { makeOverlay, alignPadding, type OverlayFile } from './initramfs.ts';
import { boardDirName, dnsmasqConfig, eepromSettings, exportsLines, parseIPv4 } from './server.ts';
import { bundleChunks, type BundlePlan } from '../lock/bundle.ts';

/** Where a netbooted node's bundle tar sits in its NFS root; cloud-init/bundle.sh reads it from there. */
export const NETBOOT_BUNDLE_PATH = '/var/lib/pi-image/bundle.tar';

export interface NetbootNode {
  name: string;
  serial?: string;
  mac?: string;
  /** The node's address, for a tighter NFS export. */
  address?: string;
  /** cloud-init seed: file name (user-data, meta-data, network-config) → content. */
  seed: Record<string, string | Buffer>;
  /** Extra kernel command line flags (cgroups, quirks). */
  extraCmdline?: string[];
  /** The node's role share of the lock (lib/lock/bundle.ts): put into the NFS root at NETBOOT_BUNDLE_PATH. */
  bundle?: BundlePlan;
}

export interface NetbootOptions {
  /** Base image (raw .img) with a FAT boot partition and an ext4 root. */
  image: string;
  /** How it boots: the catalog entry's boot spec (default DEFAULT_BOOT): model, kernel names. */
  boot?: Pick<BootSpec, 'model' | 'decompressedKernel'>;
  server: string;
  tftpRoot: string;
  nfsRoot: string;
  nodes: NetbootNode[];
  by?: 'serial' | 'mac';
  format?: 'dir' | 'tar';
  /** LAN prefix length for proxy DHCP and exports (default 24). */
  prefix?: number;
  /** Extra files for the initramfs overlay. */
  overlayFiles?: OverlayFile[];
  /** Timestamp for generated files (default: the ext4 root's mtime, reproducible). */
  mtime?: Date;
  onProgress?: OnProgress;
}

export interface NetbootNodeResult {
  name: string;
  tftpDir: string;
  /** The NFS root directory the cmdline points at. */
  nfsPath: string;
  /** The tar written (format tar) — extract it at nfsPath with `tar -xpf … --numeric-owner`. */
  tarFile?: string;
  cmdline: string;
  export: ExportResult;
  /** The bundle carried in the NFS root: its path there and its size. */
  bundle?: { path: string; size: number; items: number };
}

export interface NetbootResult {
  nodes: NetbootNodeResult[];
  dnsmasqConf: string;
  exports: string[];
  eeprom: string[];
  /** Files written once and hard-linked into each further board directory. */
  sharedFiles: number;
}

/** Boot files a Pi 4 fetches over TFTP (no bootcode.bin, no u-boot). */
const TFTP_FILE = /^(start4[a-z]*\.elf|fixup4[a-z]*\.dat|.*\.dtb|.*\.txt)$/i;
const SEED_NAMES = new Set(['user-data', 'meta-data', 'network-config', 'vendor-data']);

export const NOCLOUD_NETBOOT_CFG = [
  '# pi-image netboot: the cloud-init seed lives in this NFS root at /boot/firmware/, not on a FAT partition',
  '# labelled system-boot.',
  'datasource_list: [ NoCloud, None ]',
  'datasource:',
  '  NoCloud:',
  '    seedfrom: file:///boot/firmware/',
  '',
].join('\n');

export const OVERLAY_CONF = 'conf/conf.d/pi-image-netboot';

/** fstab for an NFS root: the root and boot-partition lines are commented out (the kernel mounts / from NFS). */
export function nfsFstab(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const f = line.trim().split(/\s+/);
      if (line.trim().startsWith('#') || f.length < 3) return line;
      if (f[1] === '/' || f[1] === '/boot/firmware' || f[1] === '/boot') {
        return `# pi-image netboot (root is NFS, no SD card): ${line}`;
      }
      return line;
    })
    .join('\n');
}

/** The image's kernel command line turned to an NFS root: its own root/rootfstype/ro/rw/ip/rootwait/fixrtc
 *  dropped, then `root=/dev/nfs nfsroot=<server>:<path>,vers=3 rw ip=dhcp rootwait` and the node's extra flags. */
export function nfsCmdline(original: string, server: string, nfsPath: string, extra: string[]): string {
  const base = editCmdline(original.split(/\r?\n/)[0], {
    remove: ['root', 'rootfstype', 'nfsroot', 'ro', 'rw', 'ip', 'rootwait', 'fixrtc'],
  }).replace(/\s*\brootwait$/, '');
  const line = `${base} root=/dev/nfs nfsroot=${server}:${nfsPath},vers=3 rw ip=dhcp rootwait`.trim();
  return extra.length ? editCmdline(line, { add: extra }) : line;
}

/** The boot and root partitions of the image, by content (lib/pi/partitions.ts): netboot takes any Pi image. */
function findPartitions(io: FileIO): { boot: BlockIO; root: BlockIO } {
  const { boot, root } = locateBootRoot(readTable(io), { name: io.name, probe: partitionProbe(io) });
  return { boot: partitionIO(io, boot), root: partitionIO(io, root) };
}

function writeChunks(path: string, chunks: Iterable<Buffer>, tail?: Buffer): number {
  const fd = openSync(path, 'w', 0o644);
  let pos = 0;
  try {
    for (const c of chunks) {
      writeSync(fd, c, 0, c.length, pos);
      pos += c.length;
    }
    if (tail) {
      const pad = Buffer.alloc(alignPadding(pos));
      writeSync(fd, pad, 0, pad.length, pos);
      pos += pad.length;
      writeSync(fd, tail, 0, tail.length, pos);
      pos += tail.length;
    }
  } finally {
    closeSync(fd);
  }
  return pos;
}

/** Remove what a netboot killed mid-way left: staging dirs and temporary NFS roots of processes that are gone. */
function removeLeftovers(tftpRoot: string, nfsRoot: string): void {
  for (const [dir, pattern] of [[tftpRoot, /^\.pi-image-staging-(\d+)$/], [nfsRoot, /^\..+\.pi-image-(\d+)(\.tar)?(\.partial)?$/]] as const) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      const m = pattern.exec(name);
      if (m && !processAlive(Number(m[1]))) rmSync(join(dir, name), { recursive: true, force: true });
    }
  }
}

/** Hard-link every file of `from` into `to` (same tree), copying when links are impossible. */
function linkTree(from: string, to: string, skip: Set<string>, rel = ''): number {
  let n = 0;
  mkdirSync(join(to, rel), { recursive: true });
  for (const name of readdirSync(join(from, rel))) {
    const r = rel ? `${rel}/${name}` : name;
    if (skip.has(r)) continue;
    if (statSync(join(from, r)).isDirectory()) n += linkTree(from, to, skip, r);
    else {
      try {
        linkSync(join(from, r), join(to, r));
      } catch {
        copyFileSync(join(from, r), join(to, r));
      }
      n++;
    }
  }
  return n;
}

export async function netboot(o: NetbootOptions): Promise<NetbootResult> {
  const by = o.by ?? 'serial';
  const format = o.format ?? 'dir';
  parseIPv4(o.server, '--server');
  if (o.nodes.length === 0) throw new InputError('netboot: no nodes given');
  const tftpRoot = resolvePath(o.tftpRoot);
  const nfsRoot = resolvePath(o.nfsRoot);
  const boards = o.nodes.map((n) => ({ node: n, dir: boardDirName(by, n) }));
  const dup = boards.find((b, i) => boards.findIndex((c) => c.dir === b.dir) !== i);
  if (dup) throw new InputError(`netboot: two nodes map to the same TFTP directory ${dup.dir}`);
  for (const n of o.nodes) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n.name)) throw new InputError(`netboot: node name ${JSON.stringify(n.name)} cannot be a directory name`);
    if (!n.seed['user-data'] || !n.seed['meta-data']) {
      throw new InputError(`node ${n.name}: the seed needs user-data and meta-data (NoCloud requires both)`);
    }
  }

  const io = FileIO.open(o.image);
  try {
    const parts = findPartitions(io);
    const fat = FatFs.open(parts.boot);
    const ext = Ext4Fs.open(parts.root);
    const mtime = o.mtime ?? ext.stat('/').mtime;
    const readText = (name: string): string | undefined => (fat.exists(name) ? fat.readFile(name).toString('utf8') : undefined);
    const { model, decompressedKernel: vmlinux } = o.boot ?? DEFAULT_BOOT;
    const cfg = resolveBootConfig(readText, model);
    if (!cfg.cmdlineFound) throw new CorruptImageError(`${o.image}: boot partition has no ${cfg.cmdlineFile} (the cmdline config.txt names)`);

    // ---- the shared TFTP files, staged once ------------------------------------------------------------
    mkdirSync(tftpRoot, { recursive: true });
    const stage = join(tftpRoot, `.pi-image-staging-${process.pid}`);
    removeLeftovers(tftpRoot, nfsRoot);
    rmSync(stage, { recursive: true, force: true });
    // Everything is written under temporary names ([temporary, final] in `commits`) and renamed only once every
    // node is complete: a netboot that fails (or is killed) mid-way leaves no TFTP tree or NFS root under a final
    // name, and the next run removes what a killed one left.
    const commits: Array<[string, string]> = [];
    try {
      mkdirSync(join(stage, 'overlays'), { recursive: true });
      let shared = 0;
      // One walk of the whole boot tree: a directory loop or a damaged directory anywhere fails here, by its path.
      for (const { path, entry: e } of fat.tree()) {
        if (e.isDirectory) continue;
        const top = !path.slice(1).includes('/');
        if (top ? !TFTP_FILE.test(e.name) || SEED_NAMES.has(e.name) : !path.startsWith('/overlays/') || path.slice(10).includes('/')) continue;
        writeChunks(join(stage, path.slice(1)), fat.readFileChunks(path));
        shared++;
      }
      o.onProgress?.({ phase: 'tftp', done: shared, unit: 'items', detail: 'firmware' });
      // Kernel: the packed kernel (vmlinuz), decompressed to `vmlinux`; u-boot is bypassed.
      const packed = fat.exists('/vmlinuz') ? 'vmlinuz' : cfg.kernel;
      if (!fat.exists('/' + packed) || /uboot/i.test(packed)) throw new CorruptImageError(`${o.image}: no kernel (vmlinuz) on the boot partition`);
      const vmfd = openSync(join(stage, vmlinux), 'w', 0o644);
      let vpos = 0;
      await extractKernel(fat.readFileChunks('/' + packed), (c) => {
        writeSync(vmfd, c, 0, c.length, vpos);
        vpos += c.length;
      }, `${o.image}:${packed}`);
      closeSync(vmfd);
      shared++;
      // initrd + overlay.
      const initrdName = cfg.initramfs?.file ?? 'initrd.img';
      if (!fat.exists('/' + initrdName)) throw new CorruptImageError(`${o.image}: no ${initrdName} on the boot partition`);
      const overlay = await makeOverlay(
        [{ name: OVERLAY_CONF, data: '# pi-image netboot: the root file system comes over NFS\nBOOT=nfs\n' }, ...(o.overlayFiles ?? [])],
        mtime,
      );
      writeChunks(join(stage, 'initrd.img'), fat.readFileChunks('/' + initrdName), overlay);
      shared++;
      // config.txt & co for direct boot of vmlinux + initrd.img.
      for (const [name, text] of Object.entries(editConfigForDirectBoot(readText, { kernel: vmlinux, initramfs: 'initrd.img', model }))) {
        writeFileSync(join(stage, name), text);
      }
      const cmdlineFiles = [...new Set(['cmdline.txt', cfg.cmdlineFile])];

      // ---- per board ---------------------------------------------------------------------------------------
      const results: NetbootNodeResult[] = [];
      let first: string | undefined;
      for (const { node, dir } of boards) {
        const nfsPath = join(nfsRoot, node.name);
        const cmdline = nfsCmdline(cfg.cmdline, o.server, nfsPath, node.extraCmdline ?? []);
        const boardDir = join(tftpRoot, dir);
        const tmp = `${boardDir}.partial`;
        rmSync(tmp, { recursive: true, force: true });
        shared = linkTree(first ?? stage, tmp, new Set(cmdlineFiles));
        for (const f of cmdlineFiles) writeFileSync(join(tmp, f), cmdline + '\n');
        const check = resolveBootConfig((n) => (existsSync(join(tmp, n)) ? readFileSync(join(tmp, n), 'utf8') : undefined), model);
        if (check.kernel !== vmlinux || !check.cmdline.includes('root=/dev/nfs')) {
          throw new CorruptImageError(`${o.image}: the TFTP config for ${node.name} does not boot ${vmlinux} with the NFS cmdline`);
        }
        commits.push([tmp, boardDir]);
        first ??= tmp;

        // NFS root.
        const overrides: Record<string, FileOverride> = {};
        try {
          overrides['/etc/fstab'] = { data: nfsFstab(ext.readFile('/etc/fstab').toString('utf8')) };
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err; // a symlink loop, a damaged inode: not "no fstab"
          overrides['/etc/fstab'] = { data: '# pi-image netboot: root is NFS (kernel command line)\n' };
        }
        let cloudCfg = '/etc/cloud/cloud.cfg.d/99-pi-image-netboot.cfg';
        try {
          ext.lstat('/etc/cloud/cloud.cfg.d/99-fake_cloud.cfg');
          cloudCfg = '/etc/cloud/cloud.cfg.d/99-fake_cloud.cfg';
        } catch {
          /* keep our own name */
        }
        overrides[cloudCfg] = { data: NOCLOUD_NETBOOT_CFG };
        for (const [name, data] of Object.entries(node.seed)) {
          overrides[`/boot/firmware/${name}`] = { data, mode: name === 'user-data' ? 0o600 : 0o644, uid: 0, gid: 0 };
        }
        const bundle = node.bundle;
        if (bundle) overrides[NETBOOT_BUNDLE_PATH] = { data: { size: bundle.size, chunks: () => bundleChunks(bundle) }, mode: 0o644, uid: 0, gid: 0 };
        mkdirSync(nfsRoot, { recursive: true });
        const progress: OnProgress = (e) => o.onProgress?.({ ...e, phase: `${node.name}: nfs root` });
        let exp: ExportResult;
        let tarFile: string | undefined;
        const nfsTmp = join(nfsRoot, `.${node.name}.pi-image-${process.pid}${format === 'tar' ? '.tar' : ''}`);
        const named = (err: unknown): never => {
          throw atPath(err, tarFile ?? nfsPath); // an fd error (ENOSPC) names the NFS root, not its temporary name
        };
        if (format === 'tar') {
          tarFile = join(nfsRoot, `${node.name}.tar`);
          exp = await exportTar(ext, nfsTmp, { overrides, mtime, onProgress: progress }).catch(named);
        } else {
          exp = await exportDir(ext, nfsTmp, { overrides, mtime, onProgress: progress }).catch(named);
        }
        commits.push([nfsTmp, tarFile ?? nfsPath]);
        results.push({
          name: node.name, tftpDir: boardDir, nfsPath, tarFile, cmdline, export: exp,
          ...(bundle ? { bundle: { path: NETBOOT_BUNDLE_PATH, size: bundle.size, items: bundle.items.length } } : {}),
        });
      }
      for (const [tmp, final] of commits) {
        rmSync(final, { recursive: true, force: true });
        renameSync(tmp, final);
      }
      commits.length = 0;
      return {
        nodes: results,
        dnsmasqConf: dnsmasqConfig({ server: o.server, tftpRoot, prefix: o.prefix }),
        exports: exportsLines(results.map((r, i) => ({ path: r.nfsPath, client: o.nodes[i].address })), o.server, o.prefix),
        eeprom: eepromSettings(by, o.server),
        sharedFiles: shared,
      };
    } finally {
      for (const [tmp] of commits) rmSync(tmp, { recursive: true, force: true });
      rmSync(stage, { recursive: true, force: true });
    }
  } finally {
    io.close();
  }
}

