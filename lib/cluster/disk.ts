// Per-node disk identity: MBR disk signatures derived from the cluster and node names, so `root=PARTUUID=…`
// points at exactly this node's SSD even with several disks attached, and rebuilding gives the same ids.
import { createHash } from 'node:crypto';

function signature(material: string): number {
  const h = createHash('sha256').update(material).digest();
  const v = h.readUInt32BE(0);
  // 0 means "no signature" to some tools; fall back to the next 4 bytes (and never 0).
  return v !== 0 ? v : h.readUInt32BE(4) || 1;
}

/** The SSD's MBR disk signature: first 4 bytes (big-endian) of sha256("pi-image:<cluster>:<node>:ssd"), never 0. */
export function diskSignature(clusterName: string, nodeName: string): number {
  return signature(`pi-image:${clusterName}:${nodeName}:ssd`);
}

/** The SD card's MBR disk signature (same scheme, ":sd"). */
export function sdDiskSignature(clusterName: string, nodeName: string): number {
  return signature(`pi-image:${clusterName}:${nodeName}:sd`);
}

/** `PARTUUID=<8 hex>-<2 hex>` as the kernel reads it for MBR disks. */
export function mbrPartuuid(sig: number, partition: number): string {
  return `${sig.toString(16).padStart(8, '0')}-${partition.toString(16).padStart(2, '0')}`;
}
