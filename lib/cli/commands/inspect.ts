// `pi-image inspect IMAGE`: partitions, filesystems, the Pi 4 boot config and the cloud-init seed. Formatting only;
// the report comes from lib/inspect.
import type { CommandModule } from 'yargs';
import type { InspectReport, PartitionReport } from '../../inspect/index.ts';
import { runCommand, formatBytes, type GlobalOptions } from '../output.ts';

interface InspectArgs extends GlobalOptions {
  image: string;
  model: string;
}

function partLines(p: PartitionReport): string[] {
  const lines: string[] = [];
  const fs = p.filesystem === 'vfat' ? `vfat (FAT${p.fatType})` : p.filesystem;
  const usage = p.usedBytes !== undefined && p.fsSize !== undefined ? `  used ${formatBytes(p.usedBytes)} of ${formatBytes(p.fsSize)}` : '';
  lines.push(
    `  ${String(p.number).padEnd(2)} ${p.bootable ? '*' : ' '} ${p.typeHex} ${p.typeName.padEnd(16)} start ${String(p.startLba).padStart(8)}  ${formatBytes(p.size).padStart(10)}  ${fs}${p.label ? ` "${p.label}"` : ''}${usage}  PARTUUID=${p.partuuid}`,
  );
  const b = p.piBoot;
  if (b) {
    lines.push(`       ${b.model} boots: ${b.kernel}${b.kernelPresent ? (b.kernelKind && b.kernelKind !== 'unknown' ? ` (${b.kernelKind})` : '') : ' (MISSING)'}`);
    lines.push(`       initramfs: ${b.initramfs ? `${b.initramfs.file} ${b.initramfs.address}${b.initramfs.present ? '' : ' (MISSING)'}` : 'none (loaded by u-boot\'s boot.scr if the kernel is u-boot)'}`);
    lines.push(`       config: ${b.configFiles.join(' → ') || '(no config.txt)'}${b.userConfigFile ? `; user changes go in ${b.userConfigFile}` : ''}`);
    lines.push(`       cmdline (${b.cmdlineFile}${b.cmdlineFound ? '' : ', MISSING'}): ${b.cmdline}`);
    if (b.unusedCmdlineFiles.length) lines.push(`       not used: ${b.unusedCmdlineFiles.join(', ')}`);
    const s = b.seed;
    const files = [s.userData && 'user-data', s.metaData && 'meta-data', s.networkConfig && 'network-config'].filter(Boolean).join(', ');
    lines.push(`       cloud-init seed: ${s.present ? 'yes' : 'no'}${files ? ` (${files})` : ''}${s.instanceId !== undefined ? `, instance-id ${s.instanceId}` : ''}${s.localHostname ? `, hostname ${s.localHostname}` : ''}`);
    for (const n of [...s.notes, ...b.warnings]) lines.push(`       note: ${n}`);
    for (const m of b.missing) lines.push(`       missing: ${m}`);
  }
  const r = p.root;
  if (r) {
    lines.push(`       os: ${r.prettyName ?? '(no os-release)'}${r.hostname ? `, hostname ${r.hostname}` : ''}`);
    if (r.fstab) {
      r.fstab.forEach((e, i) => lines.push(`       ${i === 0 ? 'fstab:' : '      '} ${e.spec} ${e.file} ${e.vfstype} ${e.options} ${e.freq} ${e.passno}`));
    }
    if (r.cloudConfigFiles?.length) lines.push(`       cloud.cfg.d: ${r.cloudConfigFiles.join(', ')}`);
  }
  return lines;
}

export function formatInspect(r: InspectReport): string {
  const head = `${r.image}: ${formatBytes(r.size)}, ${r.table.toUpperCase()}, disk id ${r.diskSignature}`;
  const parts = r.partitions.length ? r.partitions.flatMap(partLines) : ['  (no partitions)'];
  const tail = r.unpartitionedTail > 0 ? [`  ${formatBytes(r.unpartitionedTail)} unpartitioned after the last partition`] : [];
  return [head, ...parts, ...tail].join('\n');
}

export const command: CommandModule<GlobalOptions, InspectArgs> = {
  command: 'inspect <image>',
  describe: 'Show partitions, filesystems, the Pi 4 boot config and the cloud-init seed of a disk image',
  builder: (y) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'Raw disk image (.img)' })
      .option('model', { type: 'string', default: 'pi4', describe: 'Pi model whose config.txt sections count' })
      .example('$0 inspect out/node1/sd.img', 'partitions, the kernel and cmdline a Pi 4 boots, the seed')
      .example('$0 inspect out/node1/ssd.img', 'the root filesystem: os-release, hostname, fstab')
      .example('$0 inspect ubuntu.img --model pi3 --json', 'as a Pi 3 would read config.txt, as JSON'),
  handler: (argv) =>
    runCommand(argv, async (out) => {
      const { inspectImage } = await import('../../inspect/index.ts');
      const report = inspectImage(argv.image, { model: argv.model });
      out.result({ ...report }, formatInspect(report));
    }),
};
