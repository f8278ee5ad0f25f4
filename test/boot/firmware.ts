// What the Pi 4 firmware would load from a boot partition: config.txt resolved for a Pi 4 ([all] and [pi4] sections,
// `include`, last setting wins) → kernel file, initramfs file and the command line. A local stand-in for
// lib/pi's resolver, used to hand QEMU the same kernel, initrd and cmdline the firmware would pick.

export interface BootFiles {
  kernel: string;
  initramfs?: string;
  cmdlineFile: string;
}

/** Sections that apply to a Raspberry Pi 4 Model B. Every other filter is treated as not matching. */
const PI4 = new Set(['all', 'pi4']);

/**
 * Resolves config.txt as the firmware does for a Pi 4. `read(name)` returns a file of the boot partition (or
 * undefined when missing: a missing include is skipped, as the firmware does).
 */
export function resolveBootFiles(read: (name: string) => string | undefined, configName = 'config.txt'): BootFiles {
  const settings = new Map<string, string>();
  let initramfs: string | undefined;
  let applying = true;
  const seen = new Set<string>();
  const walk = (name: string) => {
    if (seen.has(name)) return; // include loops: the firmware would not get far either
    seen.add(name);
    const text = read(name);
    if (text === undefined) return;
    for (const raw of text.split(/\r?\n/)) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const section = /^\[([^\]]+)\]$/.exec(line);
      if (section) {
        applying = PI4.has(section[1].trim().toLowerCase());
        continue;
      }
      if (!applying) continue;
      const inc = /^include\s+(\S+)/.exec(line);
      if (inc) {
        walk(inc[1]);
        continue;
      }
      const ird = /^initramfs\s+(\S+)/.exec(line);
      if (ird) {
        initramfs = ird[1];
        continue;
      }
      const kv = /^([A-Za-z0-9_]+)\s*=\s*(.*)$/.exec(line);
      if (kv) settings.set(kv[1].toLowerCase(), kv[2].trim());
    }
  };
  walk(configName);
  const arm64 = settings.get('arm_64bit') === '1';
  return {
    kernel: settings.get('kernel') ?? (arm64 ? 'kernel8.img' : 'kernel7l.img'),
    initramfs,
    cmdlineFile: settings.get('cmdline') ?? 'cmdline.txt',
  };
}

/** The kernel command line as the firmware passes it: the file's first line, trimmed. */
export function cmdlineOf(text: string): string {
  return text.split(/\r?\n/)[0].trim();
}
