// The platform a base image runs (linux/arm64 for the Ubuntu raspi images), read from the image itself through
// the ext4 reader: dpkg's native architecture (/var/lib/dpkg/arch, first line), else the ELF header of a binary
// every Debian/Ubuntu root has. Never assumed: an image that says neither is refused by name.
import type { BlockIO } from '../image/io.ts';
import { readTable, partitionIO } from '../image/partition-table.ts';
import { partitionProbe } from '../image/probe.ts';
import { locatePartition } from '../pi/partitions.ts';
import type { BootSpec } from '../source/catalog.ts';
import { Ext4Fs } from '../image/ext4/index.ts';
import { InputError } from '../errors.ts';
import type { Platform } from './registry.ts';

/** Debian architecture names → OCI platform. */
const DEB_ARCH: Record<string, Platform> = {
  arm64: { os: 'linux', architecture: 'arm64' },
  amd64: { os: 'linux', architecture: 'amd64' },
  armhf: { os: 'linux', architecture: 'arm', variant: 'v7' },
  armel: { os: 'linux', architecture: 'arm', variant: 'v6' },
  i386: { os: 'linux', architecture: '386' },
  ppc64el: { os: 'linux', architecture: 'ppc64le' },
  s390x: { os: 'linux', architecture: 's390x' },
  riscv64: { os: 'linux', architecture: 'riscv64' },
};
/** ELF e_machine → Debian architecture (64-bit class for the 64-bit ones). */
const ELF_MACHINE: Record<number, string> = { 0xb7: 'arm64', 0x3e: 'amd64', 0x28: 'armhf', 0x03: 'i386', 0x15: 'ppc64el', 0x16: 's390x', 0xf3: 'riscv64' };
const ELF_CANDIDATES = ['/usr/bin/dpkg', '/bin/sh', '/usr/bin/env', '/bin/bash', '/sbin/init', '/usr/lib/systemd/systemd'];

/** Debian architecture from an ELF header, or undefined when it is not one. */
export function elfArchitecture(head: Buffer): string | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const little = head[5] === 1;
  const machine = little ? head.readUInt16LE(18) : head.readUInt16BE(18);
  return ELF_MACHINE[machine];
}

export function debToPlatform(arch: string): Platform | undefined {
  return DEB_ARCH[arch];
}

export interface ImagePlatform {
  /** Debian architecture (arm64). */
  architecture: string;
  platform: Platform;
  /** Where it was read (for messages and the lock command's output). */
  source: string;
}

/** Read the platform of the root filesystem `fs`. */
export function platformOfRoot(fs: Ext4Fs, name: string): ImagePlatform {
  try {
    const arch = fs.readFile('/var/lib/dpkg/arch').toString('utf8').split('\n')[0]!.trim();
    const p = debToPlatform(arch);
    if (p) return { architecture: arch, platform: p, source: `${name}:/var/lib/dpkg/arch` };
  } catch {
    /* single-arch systems have no such file: look at a binary */
  }
  for (const path of ELF_CANDIDATES) {
    let head: Buffer;
    try {
      const first = fs.readChunks(path)[Symbol.iterator]().next();
      if (first.done) continue;
      head = first.value.subarray(0, 64);
    } catch {
      continue;
    }
    const arch = elfArchitecture(head);
    if (arch) return { architecture: arch, platform: debToPlatform(arch)!, source: `${name}:${path} (ELF header)` };
  }
  throw new InputError(
    `${name}: cannot tell the image's platform: no /var/lib/dpkg/arch and no ELF binary at ${ELF_CANDIDATES.join(', ')}`,
    'use a Debian or Ubuntu base image',
  );
}

/** The platform of a base disk image: its root as the catalog's boot spec says, else found by content. */
export function platformOfImage(io: BlockIO, spec?: BootSpec): ImagePlatform {
  return platformOfRoot(rootFsOfImage(io, spec), io.name);
}

/** The root filesystem of a base disk image (lib/pi/partitions.ts: the catalog's number, else the last ext4). */
export function rootFsOfImage(io: BlockIO, spec?: BootSpec): Ext4Fs {
  const root = locatePartition(readTable(io), 'root', { name: io.name, spec, probe: partitionProbe(io) });
  return Ext4Fs.open(partitionIO(io, root));
}
