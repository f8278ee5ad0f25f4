// Which nodes a command works on: `<node…>` or `--all`, for build, seed and netboot alike (the same options, the
// same usage errors), and the manifest of a build for flash (what was built where, never worked out by hand).
// Invariants: node names and --all together, or neither, is a UsageError (exit 2). A name the profile lacks is
// cluster/profile.ts selectNodes' InputError (the library's build checks names the same way).
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, UsageError } from '../errors.ts';

export interface NodeSelectionArgs {
  nodes?: string[];
  all?: boolean;
}

/** The `[nodes..]` positional and `--all`; `verb` says what the command does to each node ("build"). */
export function nodeOptions<T>(y: Argv<T>, verb: string): Argv<T & NodeSelectionArgs> {
  return y
    .positional('nodes', { type: 'string', array: true, describe: 'Node names from the profile' })
    .option('all', { type: 'boolean', describe: `${verb[0]!.toUpperCase()}${verb.slice(1)} every node of the profile` }) as Argv<T & NodeSelectionArgs>;
}

/** The node names given, or 'all'; throws a UsageError for both or neither. */
export function selectedNodes(argv: NodeSelectionArgs, verb: string): string[] | 'all' {
  if (argv.all && argv.nodes?.length) throw new UsageError('name nodes or pass --all, not both');
  if (argv.all) return 'all';
  if (!argv.nodes?.length) throw new UsageError(`name the nodes to ${verb} (e.g. node1), or pass --all`);
  return argv.nodes;
}

/** Where a built node's image and its block map are, as out/manifest.json says (file names relative to `outDir`). */
export async function builtImage(outDir: string, node: string, kind: 'sd' | 'ssd'): Promise<{ image: string; bmap: string }> {
  const { readManifest } = await import('../build/manifest.ts'); // when run: --help loads no pipeline code
  const manifestPath = join(outDir, 'manifest.json');
  const manifest = readManifest(manifestPath);
  if (!manifest) throw new InputError(`${node}: neither an image file nor a node built in ${outDir}/ (no ${manifestPath})`, `Build it first: pi-image build ${node}`);
  const entry = manifest.nodes[node];
  if (!entry) throw new InputError(`${node}: not in ${manifestPath} (built there: ${Object.keys(manifest.nodes).join(', ') || 'none'})`, `Build it first: pi-image build ${node}`);
  const image = join(outDir, entry[kind].file);
  if (!existsSync(image)) throw new InputError(`${image}: not found, though ${manifestPath} lists it`, `Build the node again: pi-image build ${node}`);
  return { image, bmap: join(outDir, entry[kind].bmap.file) };
}
