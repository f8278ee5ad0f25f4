// Everything the build needs for one node, as data: disk signatures, root PARTUUID, kernel command-line
// additions, the SSD root partition size and the seed files. The build only writes these bytes.
import { renderSeed, type Seed, type SeedOptions } from './seed.ts';
import { diskSignature, sdDiskSignature } from './disk.ts';
import { partUuid } from '../image/mbr.ts';
import { findNode, type Profile } from './profile.ts';
import type { Secrets } from './secrets.ts';
import { K8S_CGROUP_ARGS } from '../pi/cmdline.ts';

export interface NodePlan {
  name: string;
  role: 'master' | 'worker';
  /** MBR disk signature of the SSD image (root on p1). */
  ssdDiskSignature: number;
  /** MBR disk signature of the SD card image. */
  sdDiskSignature: number;
  /** `PARTUUID=xxxxxxxx-01`: the kernel's root= value. */
  rootPartuuid: string;
  /** Words to add to the kernel command line (replace any root=/rootfstype= already there). */
  cmdline: string[];
  /** The part of `cmdline` that does not name the root (quirks, cgroups, kernel.cmdline): netboot uses it too. */
  kernelArgs: string[];
  /** Paths of the seed's files that hold secrets (empty: the SD image holds none). */
  secretFiles: string[];
  /** Size of the SSD's root partition (p1) in bytes; the ext4 inside grows to it on first boot. */
  rootPartitionBytes: number;
  /** Whether first boot creates p2 (raw, for Heketi) in the rest of the SSD. */
  brick: boolean;
  /** Seed files for the system-boot partition: user-data, meta-data, network-config. */
  seed: { 'user-data': string; 'meta-data': string; 'network-config': string };
  instanceId: string;
  /** Pi serial (8 hex) and MAC when the profile gives them (netboot, review). */
  serial?: string;
  mac?: string;
}

/** Kernel arguments every node of the profile gets, whatever its root: USB quirks, cgroups, kernel.cmdline. */
export function kernelArgs(profile: Profile): string[] {
  const args: string[] = [];
  if (profile.ssd.quirks.length > 0) args.push(`usb-storage.quirks=${profile.ssd.quirks.join(',')}`);
  if (profile.kubernetes.enabled) args.push(...K8S_CGROUP_ARGS, 'swapaccount=1');
  args.push(...profile.kernel.cmdline);
  return args;
}

export function nodePlan(profile: Profile, nodeName: string, secrets: Secrets, o: SeedOptions = {}): NodePlan {
  const node = findNode(profile, nodeName);
  const ssd = diskSignature(profile.cluster.name, node.name);
  const seed: Seed = renderSeed(profile, node.name, secrets, o);
  const rootPartuuid = `PARTUUID=${partUuid(ssd, 1)}`;
  const args = kernelArgs(profile);
  const cmdline = [`root=${rootPartuuid}`, 'rootfstype=ext4', 'rootwait', ...args];
  return {
    name: node.name,
    role: node.role,
    ssdDiskSignature: ssd,
    sdDiskSignature: sdDiskSignature(profile.cluster.name, node.name),
    rootPartuuid,
    cmdline,
    kernelArgs: args,
    secretFiles: seed.secretFiles,
    rootPartitionBytes: profile.rootSizeBytes,
    brick: profile.ssd.brick,
    seed: { 'user-data': seed['user-data'], 'meta-data': seed['meta-data'], 'network-config': seed['network-config'] },
    instanceId: seed.instanceId,
    serial: node.serial,
    mac: node.mac,
  };
}
