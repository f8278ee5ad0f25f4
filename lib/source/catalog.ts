// The image catalog: one YAML (or JSON) file per base image in `images/`, validated with zod. An entry says where
// to download the image, how to verify it (pinned sha256 or the published SHA256SUMS) and, as data, how the image
// boots (which files, which partitions), so the build has no per-release special cases.
import { PACKAGE_ROOT } from '../paths.ts';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { InputError, NotFoundError } from '../errors.ts';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');
const fileName = z.string().min(1).regex(/^[^/\\]+$/, 'must be a plain file name, no slashes');

/** How a release boots, as data. Every field but `style` has a default: an image that is not in the catalog
 *  (a path or URL) boots by DEFAULT_BOOT. */
const BootFields = {
  /** How the firmware reaches the kernel: u-boot with `cmdline=nobtcmd.txt` (19.10) or `cmdline.txt` (20.04+);
   *  shown by `pi-image images`. The build itself follows what config.txt says. */
  style: z.enum(['uboot-nobtcmd', 'cmdline-txt']),
  /** Partition numbers (1-based) of the FAT boot partition and the ext4 root (lib/pi/partitions.ts). */
  bootPartition: z.number().int().min(1).max(128).default(1),
  rootPartition: z.number().int().min(1).max(128).default(2),
  kernel: fileName.default('vmlinuz'),
  initrd: fileName.default('initrd.img'),
  /** How `kernel` is compressed: gzip (decompress for direct boot), none, or auto (sniff the magic bytes). */
  kernelCompression: z.enum(['gzip', 'none', 'auto']).default('auto'),
  /** Name the decompressed kernel gets on the SD image when `kernel` is gzip. */
  decompressedKernel: fileName.default('vmlinux'),
  /** The Pi model whose config.txt sections count (the cluster's boards). */
  model: z.string().min(1).default('pi4'),
  /** The Pi 4 firmware file the boot partition must hold (checked before a build copies it). */
  pi4Firmware: fileName.default('start4.elf'),
};

export const BootSchema = z.object(BootFields).strict();

/** The boot spec of an image the catalog does not know: the schema's defaults (no style). */
export const DEFAULT_BOOT: Omit<BootSpec, 'style'> = z.object(BootFields).omit({ style: true }).parse({});

export const CatalogEntrySchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'lowercase letters, digits, . _ -'),
    aliases: z.array(z.string().min(1)).default([]),
    title: z.string().min(1),
    os: z.string().min(1).default('ubuntu'),
    release: z.string().min(1),
    codename: z.string().min(1).optional(),
    arch: z.enum(['arm64', 'armhf']),
    default: z.boolean().default(false),
    /** File name as published (used for SHA256SUMS lookup and the download's name in the cache). */
    file: fileName,
    /** Download locations, tried in order (a 404 or a dead host moves on to the next). */
    urls: z.array(z.string().url()).min(1),
    compression: z.enum(['xz', 'zip', 'gz', 'none']),
    /** Size in bytes of the published (compressed) file, when known. */
    size: z.number().int().positive().optional(),
    /** Pinned sha256 of the published file. */
    sha256: sha256Hex.optional(),
    /** Where the published SHA256SUMS is: absolute, or relative to the directory of the URL that answered. */
    sha256sumsUrl: z.string().min(1).optional(),
    boot: BootSchema,
  })
  .strict()
  .refine((e) => e.sha256 !== undefined || e.sha256sumsUrl !== undefined, {
    message: 'give sha256 or sha256sumsUrl: every catalog image must be verifiable',
    path: ['sha256'],
  });

export type CatalogEntry = z.infer<typeof CatalogEntrySchema>;
export type BootSpec = z.infer<typeof BootSchema>;

/** The catalog shipped with pi-image (`images/` at the package root). */
export function defaultCatalogDir(): string {
  return join(PACKAGE_ROOT, 'images');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const path = issue.path.length ? issue.path.join('.') : '(top level)';
  return `field ${path}: ${issue.message}`;
}

/** Parse and validate one catalog file's text; errors name the file and the field. */
export function parseCatalogEntry(text: string, file: string): CatalogEntry {
  let data: unknown;
  try {
    data = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new InputError(`catalog file ${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  const r = CatalogEntrySchema.safeParse(data);
  if (!r.success) {
    throw new InputError(`catalog file ${file}: ${r.error.issues.map(describeIssue).join('; ')}`, 'Fix the catalog entry (see docs/sources.md for the fields).');
  }
  return r.data;
}

/** Load every entry of a catalog directory (default: the shipped one), sorted by id; ids and aliases must be unique. */
export function listCatalog(catalogDir: string = defaultCatalogDir()): CatalogEntry[] {
  let files: string[];
  try {
    files = readdirSync(catalogDir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
  } catch (err) {
    throw new InputError(`catalog directory ${catalogDir}: ${(err as Error).message}`);
  }
  const entries: CatalogEntry[] = [];
  const names = new Map<string, string>();
  for (const f of files) {
    const path = join(catalogDir, f);
    const e = parseCatalogEntry(readFileSync(path, 'utf8'), path);
    for (const name of [e.id, ...e.aliases]) {
      const prev = names.get(name);
      if (prev) throw new InputError(`catalog file ${path}: id or alias "${name}" is also used by ${prev}`);
      names.set(name, path);
    }
    entries.push(e);
  }
  const defaults = entries.filter((e) => e.default);
  if (defaults.length > 1) throw new InputError(`catalog ${catalogDir}: more than one default image (${defaults.map((e) => e.id).join(', ')})`);
  return entries.sort((a, b) => a.id.localeCompare(b.id));
}

/** Look up a catalog entry by id or alias (`default` names the default entry); undefined when absent. */
export function findCatalogEntry(name: string, catalogDir?: string): CatalogEntry | undefined {
  const entries = listCatalog(catalogDir);
  if (name === 'default') return entries.find((e) => e.default);
  return entries.find((e) => e.id === name || e.aliases.includes(name));
}

/** Like findCatalogEntry, but a missing id is a NotFoundError listing what exists. */
export function getCatalogEntry(name: string, catalogDir?: string): CatalogEntry {
  const e = findCatalogEntry(name, catalogDir);
  if (!e) {
    const ids = listCatalog(catalogDir).map((x) => x.id).join(', ');
    throw new NotFoundError(`no catalog image "${name}" (known: ${ids}); give a catalog id, a URL or a path`);
  }
  return e;
}

// ---- release facts -------------------------------------------------------------------------------------------
// Facts about a release (by codename), whatever image it comes in: images/releases/<os>.yaml.

const ReleaseFactsSchema = z.object({ endOfLife: z.boolean().default(false), legacyIptables: z.boolean().default(false) }).strict();
export type ReleaseFacts = z.infer<typeof ReleaseFactsSchema>;

const releaseTables = new Map<string, Record<string, ReleaseFacts>>();

/** What pi-image knows of release `codename` of `os` (images/releases/<os>.yaml); all false when not listed. */
export function releaseFacts(codename: string, os = 'ubuntu', catalogDir: string = defaultCatalogDir()): ReleaseFacts {
  const file = join(catalogDir, 'releases', `${os}.yaml`);
  let table = releaseTables.get(file);
  if (!table) {
    let data: unknown;
    try {
      data = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new InputError(`release facts ${file}: ${(err as Error).message}`);
    }
    const r = z.record(z.string(), ReleaseFactsSchema).safeParse(data ?? {});
    if (!r.success) throw new InputError(`release facts ${file}: ${r.error.issues.map(describeIssue).join('; ')}`);
    table = r.data;
    releaseTables.set(file, table);
  }
  return table[codename] ?? ReleaseFactsSchema.parse({});
}
