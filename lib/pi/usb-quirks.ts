// USB-SATA adapters whose UAS mode misbehaves on the Pi 4, and the `usb-storage.quirks=VID:PID:u` argument that
// makes the kernel use plain usb-storage for them (flag `u` = IGNORE_UAS, `usb-storage.quirks` in the kernel's
// kernel-parameters.txt). Data, not code: profiles name an adapter or give ids.
import { InputError } from '../errors.ts';

export interface UsbQuirk {
  /** Short names a profile may use (lowercase). */
  names: string[];
  /** Human description. */
  description: string;
  /** `vid:pid` in lowercase hex. */
  id: string;
  /** Quirk flags; `u` = ignore UAS. */
  flags: string;
  /** Where the id comes from, or 'unconfirmed'. */
  note?: string;
}

export const USB_QUIRKS: readonly UsbQuirk[] = [
  { names: ['asm1051e', 'asm1053e', 'asm1153', 'asm1153e', 'asmedia'], description: 'ASMedia ASM1051E/1053E/1153/1153E', id: '174c:55aa', flags: 'u' },
  { names: ['asmedia-235c'], description: 'ASMedia (other bridge, 235c)', id: '174c:235c', flags: 'u' },
  { names: ['asmedia-1156', 'asm1156'], description: 'ASMedia ASM1156', id: '174c:1156', flags: 'u' },
  { names: ['jms578'], description: 'JMicron JMS578', id: '152d:0578', flags: 'u' },
  { names: ['jms583'], description: 'JMicron JMS583', id: '152d:0583', flags: 'u' },
  { names: ['jms583-a583'], description: 'JMicron JMS583 (a583)', id: '152d:a583', flags: 'u' },
  {
    names: ['lacie-e481033', 'lacie'],
    description: 'LaCie E481033 (ASM1153 board)',
    id: '174c:55aa',
    flags: 'u',
    note: 'exact id unconfirmed; override with an explicit VID:PID:u in the profile',
  },
];

const ID_RE = /^([0-9a-f]{4}):([0-9a-f]{4})(?::([a-z]+))?$/i;

/** Look up an adapter by name (case-insensitive) or parse `VID:PID[:flags]`; returns the `VID:PID:flags` entry. */
export function usbQuirk(nameOrId: string): string {
  const key = nameOrId.trim().toLowerCase();
  const m = ID_RE.exec(key);
  if (m) return `${m[1]}:${m[2]}:${m[3] ?? 'u'}`;
  const q = USB_QUIRKS.find((x) => x.names.includes(key));
  if (!q) {
    throw new InputError(
      `unknown USB adapter "${nameOrId}"`,
      `Use one of ${USB_QUIRKS.flatMap((x) => x.names).join(', ')} or give the id as VID:PID:u (see lsusb).`,
    );
  }
  return `${q.id}:${q.flags}`;
}

/** The kernel argument for a list of adapters (names or ids), deduplicated: `usb-storage.quirks=174c:55aa:u,…`. */
export function usbQuirksArg(adapters: string[]): string | undefined {
  const seen = new Map<string, string>();
  for (const a of adapters) {
    const q = usbQuirk(a);
    seen.set(q.split(':').slice(0, 2).join(':'), q);
  }
  return seen.size === 0 ? undefined : `usb-storage.quirks=${[...seen.values()].join(',')}`;
}
