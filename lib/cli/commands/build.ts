// `pi-image build`: per-node SD and SSD images from a profile and a base image.
import type { CommandModule } from 'yargs';
import { normalize } from 'node:path';
import { runCommand, formatBytes, type GlobalOptions } from '../output.ts';
import { secretsCreated } from '../secrets-note.ts';
import { nodeOptions, selectedNodes } from '../nodes.ts';

interface BuildArgs extends GlobalOptions {
  nodes?: string[];
  all?: boolean;
  profile?: string;
  image?: string;
  out: string;
  jobs?: number;
  secrets?: string;
  cache?: string;
  mirror?: string;
  compress?: 'xz' | 'gz';
  fsync?: boolean;
  newToken?: boolean;
  offline?: boolean;
}

export const command: CommandModule<GlobalOptions, BuildArgs> = {
  command: 'build [nodes..]',
  describe: 'Build SD boot and SSD OS images for nodes of the cluster profile',
  builder: (y) =>
    nodeOptions(y, 'build')
      .option('profile', { type: 'string', describe: 'Cluster profile (default ./pi-image.yaml, else the reference cluster)' })
      .option('image', { type: 'string', describe: 'Base image: catalog id, URL, file:// URL or path (default: the profile\'s)' })
      .option('out', { type: 'string', default: 'out', describe: 'Output directory' })
      .option('jobs', { type: 'number', describe: 'Nodes built in parallel (default: CPU cores, at most 2, for memory)' })
      .option('secrets', { type: 'string', describe: 'Secrets directory (CA, token …), e.g. from a CI secret store (default: .pi-image-state/<cluster> beside your profile, for the built-in one ~/.local/state/pi-image/<cluster>; env PI_IMAGE_SECRETS)' })
      .option('cache', { type: 'string', describe: 'Image cache directory' })
      .option('mirror', { type: 'string', describe: 'Download base images from this mirror instead' })
      .option('compress', { choices: ['xz', 'gz'] as const, describe: 'Also write compressed copies of the images' })
      .option('fsync', { type: 'boolean', default: false, describe: 'Flush each image to disk before renaming it into place (survives a power cut; waits for the disk)' })
      .option('new-token', { type: 'boolean', describe: 'Make a fresh bootstrap token first (a node added after the token expired); prints the kubeadm command for the master' })
      .option('offline', { type: 'boolean', default: false, describe: 'Build from the cache alone: everything in pi-image.lock must have been fetched before' })
      .example('$0 build node1', 'SD and SSD images of node1 in out/node1/')
      .example('$0 build node5 --new-token', 'a node added later: a fresh token in its seed')
      .example('$0 build --all --json', 'every node, JSON lines for CI')
      .example('SOURCE_DATE_EPOCH=1577836800 $0 build --all --compress xz', 'reproducible, compressed artifacts')
      .example('$0 lock && $0 build --all --offline', 'pin first-boot downloads, then build from the cache alone'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const nodes = selectedNodes(argv, 'build');
      // A first line before the pipeline's modules load (a few hundred ms): the user sees at once that it started.
      out.starting('build', 'loading the profile');
      const { build } = await import('../../assemble/build.ts');
      const result = await build({
        nodes,
        profile: argv.profile,
        image: argv.image,
        outDir: argv.out,
        jobs: argv.jobs,
        secretsDir: argv.secrets,
        cacheDir: argv.cache,
        mirror: argv.mirror,
        compress: argv.compress,
        fsync: argv.fsync,
        newToken: argv.newToken,
        offline: argv.offline,
        onProgress: out.progress,
        onNotice: (kind, text) => {
          if (kind === 'warning') return out.warn(text);
          out.event('notice', { message: text });
          out.step(text);
        },
        onSecretsCreated: (dir) => secretsCreated(out, dir),
        onNode: (name, n) => {
          out.event('node', { node: name, sd: n.sd, ssd: n.ssd, rootPartUuid: n.rootPartUuid });
          out.step(`${name}: sd.img ${formatBytes(n.sd.size)}, ssd.img ${formatBytes(n.ssd.size)} (${formatBytes(n.ssd.mappedBytes)} used), root=PARTUUID=${n.rootPartUuid}`);
        },
      });
      // The output directory as the user gave it, so the lines can be pasted in the same shell.
      const dir = normalize(argv.out).replace(/\/+$/, '') || '/';
      const n = result.built.length;
      const lines = [`Built ${n} node${n === 1 ? '' : 's'} into ${dir}/ (manifest: ${dir}/manifest.json).`, `Flash ${n === 1 ? 'it' : 'them'} with:`];
      for (const name of result.built) {
        lines.push(`  pi-image flash ${dir}/${name}/sd.img /dev/sdX     # SD card of ${name}`);
        lines.push(`  pi-image flash ${dir}/${name}/ssd.img /dev/sdY    # SSD of ${name}`);
      }
      out.result({ outDir: result.outDir, manifest: result.manifestPath, nodes: Object.keys(result.manifest.nodes), built: result.built }, lines.join('\n'));
    }),
};
