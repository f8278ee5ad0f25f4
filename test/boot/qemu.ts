// Boots disk images under qemu-system-x86_64 the way the Pi firmware would start them: kernel, initrd and command
// line read from the SD image's boot partition (config.txt resolved for a Pi 4), every image attached as a virtio
// disk opened with snapshot=on (never written) unless the boot is `writable` (a first boot whose media are read
// afterwards, or booted again). TCG by default (a nested KVM guest hangs on these machines); KVM only
// with PI_IMAGE_BOOT_KVM=1. The serial console is collected with a timeout and kept as a log file.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cmdlineOf, resolveBootFiles, type BootFiles } from './firmware.ts';
import { partitionOffset, readFat } from './layout.ts';
import { toolEnv, which } from './sh.ts';

export interface FirmwareLoad extends BootFiles {
  kernelBytes: Buffer;
  initrdBytes?: Buffer;
  cmdline: string;
}

/** Reads what the firmware would load from partition 1 of `sdImage`. */
export function loadFromBootPartition(sdImage: string): FirmwareLoad {
  const { offset } = partitionOffset(sdImage, 1);
  const read = (name: string) => readFat(sdImage, offset, name)?.toString('utf8');
  const files = resolveBootFiles(read);
  const kernelBytes = readFat(sdImage, offset, files.kernel);
  if (!kernelBytes) throw new Error(`${sdImage}: config.txt selects kernel ${files.kernel}, which is not on the boot partition`);
  const initrdBytes = files.initramfs ? readFat(sdImage, offset, files.initramfs) : undefined;
  if (files.initramfs && !initrdBytes) throw new Error(`${sdImage}: initramfs ${files.initramfs} is not on the boot partition`);
  const cmdText = read(files.cmdlineFile);
  if (cmdText === undefined) throw new Error(`${sdImage}: cmdline file ${files.cmdlineFile} is not on the boot partition`);
  return { ...files, kernelBytes, initrdBytes, cmdline: cmdlineOf(cmdText) };
}

export interface BootResult {
  log: string;
  exitCode: number | null;
  timedOut: boolean;
  /** stopped early because `stopWhen` matched */
  stopped: boolean;
  seconds: number;
  /** the kernel said "reboot: Power down": a clean power-off */
  poweredOff: boolean;
  /** QEMU's own messages (its stderr), kept apart from the guest's console */
  qemuStderr: string;
}

export interface BootOptions {
  disks: string[];
  load: FirmwareLoad;
  timeoutSeconds: number;
  logFile?: string;
  /** a user-mode NIC (virtio, eth0) restricted to the guest: no host, no outside world */
  nic?: boolean;
  /** write to the disk images (default: snapshot=on, the images stay as they were) */
  writable?: boolean;
  /** the guest's RTC starts here (QEMU -rtc base=…, e.g. 2019-06-01T00:00:00), running with the VM's clock */
  rtcBase?: string;
  /** stop QEMU once a complete console line matches */
  stopWhen?: RegExp;
  onLine?: (line: string) => void;
}

export function qemuMissing(): string | undefined {
  return which('qemu-system-x86_64') ? undefined : 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)';
}

/** Silence on the console this long, before the guest reached userspace, is a stalled TCG guest, not a result. */
const EARLY_STALL_SECONDS = 120;
const USERSPACE = /Run \/init as init process|Freeing unused kernel|systemd\[1\]/;

/**
 * Boot once; a guest whose kernel stops printing before it reaches userspace (seen once in ~15 boots here: the
 * console froze 1.1 s into the kernel, nothing of pi-image had run) is booted once more, and says so on stderr.
 */
export async function boot(opts: BootOptions): Promise<BootResult> {
  const first = await bootOnce(opts);
  if (!first.stalledEarly) return first;
  const last = first.log.trim().split('\n').pop() ?? '';
  process.stderr.write(`[boot] the guest stalled before userspace (no console output for ${EARLY_STALL_SECONDS} s after "${last.trim()}"); booting it once more\n`);
  return bootOnce(opts);
}

async function bootOnce(opts: BootOptions): Promise<BootResult & { stalledEarly: boolean }> {
  const dir = mkdtempSync(join(tmpdir(), 'pi-image-boot-qemu-'));
  const kernel = join(dir, 'kernel');
  writeFileSync(kernel, opts.load.kernelBytes);
  const args = [
    ...(process.env.PI_IMAGE_BOOT_KVM === '1' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg', '-cpu', 'max']),
    // -nodefaults: no floppy (cloud-init's probing of an empty fd0 costs seconds), no VGA, no default NIC.
    '-nodefaults', '-m', '1024', '-smp', '2', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot',
    '-kernel', kernel, '-append', opts.load.cmdline,
  ];
  if (opts.load.initrdBytes) {
    writeFileSync(join(dir, 'initrd'), opts.load.initrdBytes);
    args.push('-initrd', join(dir, 'initrd'));
  }
  for (const d of opts.disks) args.push('-drive', `file=${d},if=virtio,format=raw${opts.writable ? '' : ',snapshot=on'}`);
  if (opts.rtcBase) args.push('-rtc', `base=${opts.rtcBase},clock=vm`);
  args.push(...(opts.nic ? ['-netdev', 'user,id=n0,restrict=on', '-device', 'virtio-net-pci,netdev=n0'] : ['-nic', 'none']));
  if (opts.logFile) {
    writeFileSync(opts.logFile, `# qemu-system-x86_64 ${args.join(' ')}\n`);
    writeFileSync(`${opts.logFile}.timed`, '# seconds since QEMU started, console line\n');
  }

  const started = Date.now();
  const child = spawn('qemu-system-x86_64', args, { env: toolEnv, stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  let qemuStderr = '';
  let partial = '';
  let timedOut = false;
  let stopped = false;
  let userspace = false;
  let stalledEarly = false;
  let lastOutput = Date.now();
  const watch = setInterval(() => {
    if (userspace || stopped || timedOut || Date.now() - lastOutput < EARLY_STALL_SECONDS * 1000) return;
    stalledEarly = true;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  }, 5000);
  child.stdout.on('data', (d: Buffer) => {
    const s = d.toString('utf8');
    lastOutput = Date.now();
    if (!userspace && USERSPACE.test(s)) userspace = true;
    log += s;
    if (opts.logFile) appendFileSync(opts.logFile, s);
    partial += s;
    const lines = partial.split(/\r?\n/);
    partial = lines.pop() ?? '';
    const at = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
    for (const l of lines) {
      opts.onLine?.(l);
      if (opts.logFile) appendFileSync(`${opts.logFile}.timed`, `${at} ${l}\n`);
      if (opts.stopWhen && !stopped && opts.stopWhen.test(l)) {
        stopped = true;
        child.kill('SIGTERM');
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    const s = d.toString('utf8');
    qemuStderr += s;
    if (opts.logFile) appendFileSync(opts.logFile, s.replace(/^(?=.)/gm, '# qemu: '));
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  }, opts.timeoutSeconds * 1000);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  }).finally(() => {
    clearTimeout(timer);
    clearInterval(watch);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    log,
    exitCode,
    timedOut,
    stopped,
    seconds: (Date.now() - started) / 1000,
    poweredOff: /reboot: Power down/.test(log),
    qemuStderr,
    stalledEarly,
  };
}
