// `pi-image drives`: the block devices flash could write, with size, model, mount points and any refusal.
// Linux: lsblk; macOS: diskutil. Sizes in decimal GB, as drive labels give them (and as flash's messages do).
import type { CommandModule } from 'yargs';
import { runCommand, type GlobalOptions } from '../output.ts';
import { InputError } from '../../errors.ts';

interface DrivesArgs extends GlobalOptions {
  all?: boolean;
}

export const command: CommandModule<GlobalOptions, DrivesArgs> = {
  command: 'drives',
  describe: 'List drives to flash to, and why pi-image would refuse any of them',
  builder: (y) =>
    y
      .option('all', { type: 'boolean', describe: 'Also list loop, RAM, zero-size and virtual devices (APFS containers, disk images)' })
      .example('$0 drives', 'the disks, their size, model, bus, mount points and whether flash would write them')
      .example('$0 drives --json', 'the same as JSON, with the refusal codes and the flag that lifts each'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      if (process.platform !== 'linux' && process.platform !== 'darwin') throw new InputError(`pi-image drives needs Linux (lsblk) or macOS (diskutil), not ${process.platform}`);
      const [{ listDrives, systemDrives }, { listDrivesMac }, { assessTarget, describeDrive, gb }] = await Promise.all([
        import('../../flash/drives.ts'), import('../../flash/diskutil.ts'), import('../../flash/safety.ts'),
      ]);
      const drives = process.platform === 'darwin' ? listDrivesMac() : listDrives();
      const system = systemDrives(drives);
      const rows = drives
        .filter((d) => argv.all || (d.size > 0 && !['loop', 'ram', 'rom', 'virtual', 'image'].includes(d.type) && !/^(zram|ram)/.test(d.name)))
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
      const table = [
        ['DEVICE', 'SIZE', 'MODEL', 'BUS', 'KIND', 'MOUNTED', 'FLASH'],
        ...rows.map((r) => [
          r.path,
          gb(r.size),
          r.model ?? '-',
          r.transport ?? '-',
          r.removable ? 'removable' : 'fixed',
          r.mountpoints.join(',') || '-',
          r.refusals.length === 0 ? 'ok' : r.refusals.map((f) => (f.needs ? `${f.code} (needs ${f.needs})` : `refused: ${f.code}`)).join(', '),
        ]),
      ];
      const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
      const human = rows.length === 0
        ? 'No drives found (pass --all to include loop devices).'
        : table.map((row) => row.map((c, i) => (i === 1 ? c.padStart(widths[i]) : i === row.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
      out.result({ drives: rows }, human);
    }),
};
