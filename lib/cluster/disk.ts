// Per-node disk identity: MBR disk signatures derived from the cluster and node names, so `root=PARTUUID=…`
// points at exactly this node's SSD even with several disks attached, and rebuilding gives the same ids.
// The PARTUUID text itself is lib/image/mbr.ts's partUuid.
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
