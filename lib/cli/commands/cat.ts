// `pi-image cat IMAGE:PART:/path`: write a file from inside a FAT or ext4 partition to stdout, streamed.
import type { CommandModule } from 'yargs';
import { NotFoundError } from '../../errors.ts';
import { runCommand, type GlobalOptions } from '../output.ts';

interface CatArgs extends GlobalOptions {
  spec: string;
}

/** Write a chunk to stdout, waiting for it to drain (constant memory for big files). */
function writeOut(chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    process.stdout.once('error', onError);
    const ok = process.stdout.write(chunk, (err) => {
      process.stdout.off('error', onError);
      if (err) reject(err);
    });
    if (ok) {
      process.stdout.off('error', onError);
      resolve();
    } else process.stdout.once('drain', () => resolve());
  });
}

export const command: CommandModule<GlobalOptions, CatArgs> = {
  command: 'cat <spec>',
  describe: 'Print a file inside an image partition: IMAGE:PART:/path (PART from 1)',
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true, describe: 'IMAGE:PART:/path, e.g. ubuntu.img:1:/config.txt' })
      .example('$0 cat out/node1/sd.img:1:/network-config', 'a file of the boot partition (FAT)')
      .example('$0 cat out/node1/ssd.img:1:/etc/fstab', 'a file of the root filesystem (ext4)')
      .example('$0 cat ubuntu.img:1:/vmlinuz > vmlinuz', 'binary files stream to stdout'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const { withPartPath } = await import('../../inspect/index.ts');
      await withPartPath(argv.spec, async (spec, v) => {
        if (!v.exists(spec.path)) throw new NotFoundError(`${spec.image} partition ${spec.part}: ${spec.path} does not exist`);
        if (!v.isFile(spec.path)) throw new NotFoundError(`${spec.image} partition ${spec.part}: ${spec.path} is not a regular file`);
        if (out.json) {
          const data = v.readFile(spec.path);
          const text = data.toString('utf8');
          const utf8 = Buffer.from(text, 'utf8').equals(data);
          out.result({ image: spec.image, partition: spec.part, path: spec.path, size: data.length, encoding: utf8 ? 'utf8' : 'base64', content: utf8 ? text : data.toString('base64') });
          return;
        }
        try {
          for (const chunk of v.readChunks(spec.path)) await writeOut(chunk);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EPIPE') return; // `| head` closed the pipe: not an error
          throw e;
        }
      });
    }),
};
