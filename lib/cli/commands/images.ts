// `pi-image images list | fetch SRC | verify | prune`: the image catalog and the local cache of base images.
import type { CommandModule, Argv } from 'yargs';
import { runCommand, formatBytes, type GlobalOptions } from '../output.ts';
import { InterruptedError, VerifyError } from '../../errors.ts';

interface ImagesArgs extends GlobalOptions {
  cache?: string;
  catalog?: string;
  mirror?: string;
  src?: string;
  sha256?: string;
  xz?: 'auto' | 'xz' | 'wasm';
  all?: boolean;
  downloads?: boolean;
}

// The source layer is loaded by the handler that runs, so `images --help` starts fast.
const source = () => import('../../source/index.ts');

const common = (y: Argv<GlobalOptions>): Argv<ImagesArgs> =>
  y
    .option('cache', { type: 'string', describe: 'Cache directory (default: $PI_IMAGE_CACHE, $XDG_CACHE_HOME/pi-image, ~/.cache/pi-image)' })
    .option('catalog', { type: 'string', describe: 'Catalog directory (default: the images/ shipped with pi-image)' }) as Argv<ImagesArgs>;

const list: CommandModule<GlobalOptions, ImagesArgs> = {
  command: 'list',
  describe: 'The catalog, and which images are cached',
  builder: (y) =>
    common(y)
      .example('$0 images list', 'catalog ids (* = the default), which are cached, and where the cache is')
      .example('$0 images list --json', 'the same as JSON') as Argv<ImagesArgs>,
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const { Cache, listCatalog, cacheDir } = await source();
      const cache = new Cache(argv.cache);
      const images = cache.listImages();
      const downloads = cache.listDownloads();
      const rows = listCatalog(argv.catalog).map((e) => {
        const img = images.find((i) => i.record.id === e.id || (e.sha256 !== undefined && i.record.sourceSha256 === e.sha256));
        const dl = downloads.find((d) => d.record.entryId === e.id || (e.sha256 !== undefined && d.record.sha256 === e.sha256));
        return { id: e.id, title: e.title, release: e.release, arch: e.arch, default: e.default, boot: e.boot.style, url: e.urls[0], cached: img?.path, downloaded: dl?.path };
      });
      const others = images.filter((i) => !rows.some((r) => r.cached === i.path)).map((i) => ({ id: i.record.id, source: i.record.source, path: i.path, size: i.record.size }));
      const human = [
        ...rows.map((r) => `${r.default ? '*' : ' '} ${r.id.padEnd(24)} ${r.title}${r.cached ? '  [cached]' : r.downloaded ? '  [downloaded]' : ''}`),
        ...(others.length ? ['', 'Also cached:', ...others.map((o) => `  ${o.id.padEnd(24)} ${formatBytes(o.size)}  from ${o.source}`)] : []),
        '',
        `cache: ${cacheDir(argv.cache)}   (* = default)`,
      ].join('\n');
      out.result({ cache: cacheDir(argv.cache), images: rows, otherCached: others }, human);
    }),
};

const fetchCmd: CommandModule<GlobalOptions, ImagesArgs> = {
  command: 'fetch <src>',
  describe: 'Download, verify and decompress an image into the cache (catalog id, http(s) URL, file:// URL or path)',
  builder: (y) =>
    common(y)
      .positional('src', { type: 'string', describe: 'Catalog id (see `images list`), URL or local path' })
      .option('mirror', { type: 'string', describe: 'Fetch catalog images from this mirror (also $PI_IMAGE_MIRROR): its URL replaces the origin of each catalog URL' })
      .option('sha256', { type: 'string', describe: 'Expected sha256 of a URL or file source' })
      .option('xz', { choices: ['auto', 'xz', 'wasm'] as const, default: 'auto' as const, describe: 'xz decoder: the system xz, the WASM one, or auto' })
      .example('$0 images fetch ubuntu-19.10.1-raspi', 'the default image, from old-releases.ubuntu.com, verified')
      .example('$0 images fetch eoan --mirror http://mirror.lan', 'the same file from a local mirror')
      .example('$0 images fetch ./ubuntu.img.xz', 'a file you downloaded yourself')
      .example('$0 images fetch https://host/my.img.xz --sha256 HEX', 'any image by URL, checked') as Argv<ImagesArgs>,
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const { resolveImage } = await source();
      const ctl = new AbortController();
      const stop = (): void => ctl.abort(new InterruptedError('interrupted; run the same command again to resume'));
      process.once('SIGINT', stop);
      try {
        const r = await (await resolveImage(argv.src!, { cacheDir: argv.cache, catalogDir: argv.catalog, mirror: argv.mirror, sha256: argv.sha256, xz: argv.xz, onProgress: out.progress, signal: ctl.signal })).done;
        out.step(r.cached ? `${r.id}: already cached` : `${r.id}: verified and decompressed (${r.decoder === 'xz' ? 'system xz' : r.decoder === 'wasm' ? 'WASM xz decoder' : r.decoder})`);
        out.debug(`decoder: ${r.decoder}; source sha256 ${r.sourceSha256}`);
        const parts = r.partitions.map((p) => `p${p.index} type 0x${p.type.toString(16)} at ${p.start} (${formatBytes(p.size)})`).join(', ');
        out.result(
          { id: r.id, path: r.path, sourceSha256: r.sourceSha256, size: r.size, cached: r.cached, decoder: r.decoder, diskSignature: r.diskSignature, partitions: r.partitions },
          `${r.path}\n  ${formatBytes(r.size)}, from a file of sha256 ${r.sourceSha256}\n  ${parts}`,
        );
      } finally {
        process.off('SIGINT', stop);
      }
    }),
};

const verify: CommandModule<GlobalOptions, ImagesArgs> = {
  command: 'verify',
  describe: 'Re-check every download against its sha256 and every cached image against its source, decoded again',
  builder: (y) =>
    common(y)
      .example('$0 images verify', 'ok/BAD per cache entry; exit 1 if any is bad')
      .example('$0 images verify --cache /srv/pi-image-cache', 'another cache directory') as Argv<ImagesArgs>,
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const { verifyCache } = await source();
      const items = await verifyCache({ cacheDir: argv.cache, catalogDir: argv.catalog, onProgress: out.progress });
      const bad = items.filter((i) => i.ok === false);
      const mark = (ok: boolean | null): string => (ok === null ? '-- ' : ok ? 'ok ' : 'BAD');
      const human = items.length === 0
        ? 'The cache is empty.'
        : items.map((i) => `${mark(i.ok)} ${i.kind.padEnd(8)} ${i.id ?? ''} ${i.path}\n    ${i.detail}`).join('\n');
      out.result({ ok: bad.length === 0, items }, human);
      if (bad.length) throw new VerifyError(`${bad.length} cache entr${bad.length === 1 ? 'y' : 'ies'} failed verification and will not be used`, 'Run `pi-image images prune` to delete them, then fetch again.');
    }),
};

const prune: CommandModule<GlobalOptions, ImagesArgs> = {
  command: 'prune',
  describe: 'Delete temporary and interrupted files (--downloads: compressed files already decompressed; --all: everything)',
  builder: (y) =>
    common(y)
      .option('all', { type: 'boolean', describe: 'Empty the cache' })
      .option('downloads', { type: 'boolean', describe: 'Also delete compressed downloads whose image is cached' })
      .example('$0 images prune', 'temporary and interrupted files only')
      .example('$0 images prune --downloads', 'also the .img.xz files already decompressed')
      .example('$0 images prune --all', 'empty the cache') as Argv<ImagesArgs>,
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const { pruneCache } = await source();
      const r = pruneCache({ cacheDir: argv.cache, all: argv.all, downloads: argv.downloads });
      out.result({ removed: r.removed, freedBytes: r.freedBytes }, r.removed.length ? `Removed ${r.removed.length} file(s), freed ${formatBytes(r.freedBytes)}.` : 'Nothing to remove.');
    }),
};

export const command: CommandModule<GlobalOptions, GlobalOptions> = {
  command: 'images <command>',
  describe: 'The image catalog and cache: list, fetch, verify, prune',
  builder: (y) =>
    y
      .command(list)
      .command(fetchCmd)
      .command(verify)
      .command(prune)
      .demandCommand(1)
      .example('$0 images list', 'the catalog and the cache')
      .example('$0 images fetch ubuntu-19.10.1-raspi', 'download, verify and decompress the default image')
      .example('$0 images <command> --help', 'options and examples of one subcommand'),
  handler: () => {},
};
