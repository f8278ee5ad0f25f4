// `pi-image ls IMAGE:PART:/path`: list a directory (or one file) inside a FAT or ext4 partition, without mounting.
import type { CommandModule } from 'yargs';
import type { ListEntry } from '../../inspect/index.ts';
import { runCommand, type GlobalOptions } from '../output.ts';

interface LsArgs extends GlobalOptions {
  spec: string;
}

function modeString(e: ListEntry): string {
  const t = e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : e.type === 'other' ? '?' : '-';
  const m = e.mode ?? 0;
  let s = t;
  for (let i = 8; i >= 0; i--) s += m & (1 << i) ? 'rwx'[(8 - i) % 3] : '-';
  return s;
}

export function formatList(entries: ListEntry[], ext4: boolean): string {
  return entries
    .map((e) => {
      const owner = ext4 ? ` ${String(e.uid ?? 0).padStart(5)} ${String(e.gid ?? 0).padStart(5)}` : '';
      const name = e.type === 'dir' ? `${e.name}/` : e.target !== undefined ? `${e.name} -> ${e.target}` : e.name;
      return `${modeString(e)}${owner} ${String(e.size).padStart(10)} ${e.mtime.slice(0, 16).replace('T', ' ')}  ${name}`;
    })
    .join('\n');
}

export const command: CommandModule<GlobalOptions, LsArgs> = {
  command: 'ls <spec>',
  describe: 'List a directory inside an image partition: IMAGE:PART:/path (PART from 1)',
  builder: (y) =>
    y
      .positional('spec', { type: 'string', demandOption: true, describe: 'IMAGE:PART:/path, e.g. ubuntu.img:1:/' })
      .example('$0 ls out/node1/sd.img:1:/', 'the boot partition (FAT)')
      .example('$0 ls out/node1/ssd.img:1:/etc/netplan', 'a directory of the root filesystem (ext4), with owners and modes'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const { withPartPath } = await import('../../inspect/index.ts');
      await withPartPath(argv.spec, (spec, v) => {
        const entries = v.list(spec.path).sort((a, b) => a.name.localeCompare(b.name));
        out.result({ image: spec.image, partition: spec.part, filesystem: v.kind, path: spec.path, entries }, entries.length ? formatList(entries, v.kind === 'ext4') : '');
      });
    }),
};
