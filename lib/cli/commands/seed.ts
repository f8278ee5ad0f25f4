// `pi-image seed <node…|--all> --out DIR`: just the cloud-init seed of each node (DIR/<node>/user-data,
// meta-data, network-config), for review or for flashing a stock image with another tool. user-data holds
// secrets: it is written 0600 and never printed.
import type { CommandModule } from 'yargs';
import { chmodSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runCommand, type GlobalOptions } from '../output.ts';
import { secretsCreated } from '../secrets-note.ts';
import { nodeOptions, selectedNodes } from '../nodes.ts';

interface SeedArgs extends GlobalOptions {
  nodes?: string[];
  all?: boolean;
  profile?: string;
  out: string;
  secrets?: string;
}

export const command: CommandModule<GlobalOptions, SeedArgs> = {
  command: 'seed [nodes..]',
  describe: 'Write the cloud-init seed (user-data, meta-data, network-config) of nodes',
  builder: (y) =>
    nodeOptions(y, 'write the seed of')
      .option('profile', { type: 'string', describe: 'Cluster profile (default ./pi-image.yaml, else the reference cluster)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Output directory: DIR/<node>/…' })
      .option('secrets', { type: 'string', describe: 'Secrets directory (default: .pi-image-state/<cluster> beside your profile, for the built-in one ~/.local/state/pi-image/<cluster>; env PI_IMAGE_SECRETS)' })
      .example('$0 seed --all --out seed', 'seed/node1/user-data …')
      .example('$0 seed node2 --profile my.yaml --out /media/$USER/system-boot/..', 'one node'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const selection = selectedNodes(argv, 'write seeds for');
      const [{ loadProfile, selectNodes }, { loadOrCreateSecrets }, { renderSeed }] = await Promise.all([
        import('../../cluster/profile.ts'), import('../../cluster/secrets.ts'), import('../../cluster/seed.ts'),
      ]);
      const { profile, profilePath, digest } = await loadProfile(argv.profile);
      const names = selectNodes(profile, selection, `profile ${profilePath}`);
      const secrets = await loadOrCreateSecrets(profile, { dir: argv.secrets, profilePath, onCreated: (dir) => secretsCreated(out, dir) });
      const root = resolve(argv.out);
      const written: { node: string; dir: string; instanceId: string }[] = [];
      names.forEach((name, i) => {
        const seed = renderSeed(profile, name, secrets);
        const dir = join(root, name);
        mkdirSync(dir, { recursive: true });
        for (const f of ['user-data', 'meta-data', 'network-config'] as const) {
          const mode = f === 'user-data' ? 0o600 : 0o644;
          const tmp = join(dir, `.${f}.partial`);
          writeFileSync(tmp, seed[f], { mode });
          chmodSync(tmp, mode);
          renameSync(tmp, join(dir, f));
        }
        written.push({ node: name, dir, instanceId: seed.instanceId });
        out.progress({ phase: 'seed', done: i + 1, total: names.length, unit: 'items', detail: name });
      });
      out.result(
        { profile: profilePath, profileDigest: digest, seeds: written },
        written.map((w) => `${w.node}: ${w.dir}/{user-data,meta-data,network-config}  (${w.instanceId})`).join('\n'),
      );
    }),
};
