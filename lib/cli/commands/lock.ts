// `pi-image lock`: pin every first-boot download of the profile in pi-image.lock beside it (files with their
// sha256 and how it was established, images resolved for the base image's platform, OS packages).
import type { CommandModule } from 'yargs';
import { relative } from 'node:path';
import { runCommand, formatBytes, type GlobalOptions } from '../output.ts';

interface LockArgs extends GlobalOptions {
  profile?: string;
  image?: string;
  cache?: string;
  mirror?: string;
  fetch?: boolean;
  apt?: boolean;
}

export const command: CommandModule<GlobalOptions, LockArgs> = {
  command: 'lock',
  describe: 'Resolve, download and pin everything the nodes need at first boot into pi-image.lock',
  builder: (y) =>
    y
      .option('profile', { type: 'string', describe: 'Cluster profile (default ./pi-image.yaml, else the reference cluster); the lock is written beside it' })
      .option('image', { type: 'string', describe: "Base image whose platform the images are resolved for (default: the profile's)" })
      .option('cache', { type: 'string', describe: 'Cache directory (the same as build uses)' })
      .option('mirror', { type: 'string', describe: 'Download base images from this mirror instead' })
      .option('fetch', { type: 'boolean', default: false, describe: 'Also fetch every image layer into the cache now (then `build --offline` needs no network)' })
      .option('apt', { type: 'boolean', default: true, describe: "Pin the nodes' OS packages (.debs) against the base image's own apt sources and keyring; --no-apt leaves them to first boot's network install" })
      .example('$0 lock', 'pi-image.lock beside ./pi-image.yaml')
      .example('$0 lock --fetch && $0 build --all --offline', 'everything into the cache, then build without network')
      .example('$0 lock --profile clusters/lab.yaml --json', 'clusters/pi-image.lock, JSON lines for CI')
      .example('git diff pi-image.lock', 'review what changed before committing it'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      out.starting('lock', 'loading the profile'); // before the lock's modules load
      const [{ makeLock }, { packageId }] = await Promise.all([import('../../lock/lock.ts'), import('../../lock/lockfile.ts')]);
      const r = await makeLock({ profile: argv.profile, image: argv.image, cacheDir: argv.cache, mirror: argv.mirror, fetch: argv.fetch, apt: argv.apt, onProgress: out.progress });
      const l = r.lock;
      const bytes = (ids: string[], kind: 'files' | 'images') =>
        kind === 'files'
          ? l.files.filter((f) => ids.includes(f.id)).reduce((s, f) => s + f.size, 0)
          : l.images.filter((i) => ids.includes(i.id)).reduce((s, i) => s + i.size + i.config.size + i.layers.reduce((a, b) => a + b.size, 0), 0);
      const roles = Object.fromEntries(
        (['master', 'worker'] as const).map((role) => [role, { files: l.roles[role].files.length, images: l.roles[role].images.length, packages: l.roles[role].packages.length, bytes: bytes(l.roles[role].files, 'files') + bytes(l.roles[role].images, 'images') + l.packages.filter((p) => l.roles[role].packages.includes(packageId(p))).reduce((s, p) => s + p.size, 0) }]),
      );
      const path = relative(process.cwd(), r.path) || r.path;
      out.result(
        { lock: r.path, changed: r.changed, fetched: r.fetched, platform: l.platform, platformFrom: r.platform.source, files: l.files.length, images: l.images.length, packages: l.packages.length, roles },
        [
          `${r.changed ? 'Wrote' : 'Unchanged:'} ${path} for ${l.platform} (read from ${r.platform.source}):`,
          `  ${l.files.length} files (${l.files.filter((f) => f.sum === 'published' || f.archive?.sum === 'published').length} with published sums), ${l.images.length} images, ${l.packages.length} packages`,
          ...(['master', 'worker'] as const).map((role) => `  ${role}: ${roles[role]!.files} files, ${roles[role]!.images} images, ${roles[role]!.packages} packages, ${formatBytes(roles[role]!.bytes)} to carry`),
        ].join('\n'),
      );
    }),
};
