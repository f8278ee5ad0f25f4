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

/** A built node's images and their block maps, as out/manifest.json names them (relative to `outDir`). */
export type BuiltNode = Record<'sd' | 'ssd', { image: string; bmap: string }>;

/**
 * Where `node`'s images are, from out/manifest.json; an InputError when `outDir` holds no build of it, naming the
 * source the user gave (`node`: it may have meant a file that is not there).
 */
export async function builtNode(outDir: string, node: string): Promise<BuiltNode> {
  const { readManifest } = await import('../assemble/manifest.ts'); // when run: --help loads no pipeline code
  const manifestPath = join(outDir, 'manifest.json');
  const manifest = readManifest(manifestPath);
  if (!manifest) throw new InputError(`${node}: neither an image file nor a node built in ${outDir}/ (no ${manifestPath})`, `Build it first: pi-image build ${node}`);
  const entry = manifest.nodes[node];
  if (!entry) throw new InputError(`${node}: neither an image file nor a node in ${manifestPath} (built there: ${Object.keys(manifest.nodes).join(', ') || 'none'})`, `Build it first: pi-image build ${node}`);
  const at = (kind: 'sd' | 'ssd') => ({ image: join(outDir, entry[kind].file), bmap: join(outDir, entry[kind].bmap.file) });
  return { sd: at('sd'), ssd: at('ssd') };
}

/** One image of a built node; an InputError when the manifest lists it but it is gone. */
export function builtImage(built: BuiltNode, node: string, kind: 'sd' | 'ssd'): { image: string; bmap: string } {
  const { image, bmap } = built[kind];
  if (!existsSync(image)) throw new InputError(`${image}: not found, though the build's manifest.json lists it`, `Build the node again: pi-image build ${node}`);
  return { image, bmap };
}
