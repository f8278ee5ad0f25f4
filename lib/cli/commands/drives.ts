// `pi-image drives`: the block devices flash could write, with size, model, mount points and any refusal.
import type { CommandModule } from 'yargs';
import { listDrives, systemDrives } from '../../flash/drives.ts';
import { assessTarget, describeDrive } from '../../flash/safety.ts';
import { runCommand, formatBytes, type GlobalOptions } from '../output.ts';
import { InputError } from '../../errors.ts';

interface DrivesArgs extends GlobalOptions {
  all?: boolean;
}

export const command: CommandModule<GlobalOptions, DrivesArgs> = {
  command: 'drives',
  describe: 'List drives to flash to, and why pi-image would refuse any of them',
  builder: (y) => y.option('all', { type: 'boolean', describe: 'Also list loop, RAM and zero-size devices' }),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      if (process.platform !== 'linux') throw new InputError('pi-image drives needs Linux (lsblk)', 'On macOS use diskutil list.');
      const drives = listDrives();
      const system = systemDrives(drives);
      const rows = drives
        .filter((d) => argv.all || (d.size > 0 && !['loop', 'ram', 'rom'].includes(d.type) && !/^(zram|ram)/.test(d.name)))
        .map((d) => {
          const { findings } = assessTarget(
            { kind: 'device', path: d.path, size: d.size, drive: d, partition: false, stats: undefined as never },
            { imageSize: 0, systemDrives: system, sourceDrives: [] },
          );
          return {
            path: d.path,
            size: d.size,
            model: [d.vendor?.startsWith('0x') ? undefined : d.vendor, d.model].filter(Boolean).join(' ') || undefined,
            transport: d.transport,
            removable: d.removable || d.hotplug,
            readOnly: d.readOnly,
            mountpoints: d.mountpoints,
            refusals: findings.filter((f) => f.level !== 'warn').map((f) => ({ code: f.code, needs: f.level === 'mounted' ? '--unmount' : f.level === 'soft' ? '--force' : undefined, message: f.message })),
            warnings: findings.filter((f) => f.level === 'warn').map((f) => f.message),
            description: describeDrive(d),
          };
        });
      const human = rows.length === 0
        ? 'No drives found (pass --all to include loop devices).'
        : rows
            .map((r) => {
              const status = r.refusals.length === 0 ? 'ok' : r.refusals.map((f) => (f.needs ? `${f.code} (needs ${f.needs})` : `refused: ${f.code}`)).join(', ');
              return `${r.path.padEnd(14)} ${formatBytes(r.size).padStart(10)}  ${(r.model ?? '-').padEnd(24)} ${(r.transport ?? '-').padEnd(5)} ${r.removable ? 'removable' : 'fixed    '}  ${r.mountpoints.join(',') || '-'}  [${status}]`;
            })
            .join('\n');
      out.result({ drives: rows }, human);
    }),
};
