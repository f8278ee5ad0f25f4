// out/manifest.json: what was built from what — profile digest, base image, and per node every file with its size,
// sha256, disk ids and PARTUUIDs. Deterministic: no times, no absolute paths, keys in a fixed order.
// File names are relative to the output directory: flash and CI read where each image is from here.
import { readFileSync } from 'node:fs';

export interface ManifestFile {
  file: string;
  size: number;
  sha256: string;
}

export interface ManifestImage extends ManifestFile {
  bmap: ManifestFile;
  diskId: string;
  partUuids: string[];
  mappedBytes: number;
  compressed?: ManifestFile & { format: 'xz' | 'gz' };
}

export interface ManifestNode {
  role: string;
  instanceId: string;
  sd: ManifestImage;
  ssd: ManifestImage;
  rootPartUuid: string;
  cmdline: string;
  /** What the SSD's bundle partition carries (from pi-image.lock), when the profile has a lock. */
  bundle?: ManifestBundle;
}

export interface ManifestBundle {
  /** The SSD partition holding the raw tar. */
  partition: number;
  /** Bytes of the tar. */
  size: number;
  items: { kind: 'file' | 'image' | 'deb' | 'apt'; name: string; size: number; sha256: string; source: string }[];
}

export interface Manifest {
  manifestVersion: 1;
  generator: string;
  sourceDateEpoch: number;
  profile: { cluster: string; digest: string };
  /** The base image: its id, and the sha256 of the file as published (what the release's SHA256SUMS lists). */
  image: { id: string; sha256: string };
  nodes: Record<string, ManifestNode>;
}

/** The manifest at `path`, or undefined when there is none (or it is not JSON). */
export function readManifest(path: string): Manifest | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch {
    return undefined;
  }
}

/** The manifest's text; the builder lists nodes sorted by name. */
export function renderManifest(m: Manifest): string {
  return JSON.stringify(m, null, 2) + '\n';
}
