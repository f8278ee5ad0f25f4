// Reading a serial console log: the PIIMG-MARK lines the seed's runcmd prints, a one-line diagnosis of a boot that
// went wrong, cloud-init's complaints about the seed, and the first-boot timeline (what happened when, in seconds since QEMU started).

export const MARK = 'PIIMG-MARK';

/** `PIIMG-MARK <key> <value…>` lines, grouped by key (a key may repeat: e.g. one line per authorized key). */
export function markers(log: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of log.matchAll(new RegExp(`${MARK} (\\S+) ?([^\\r\\n]*)`, 'g'))) {
    const list = out.get(m[1]) ?? [];
    list.push(m[2].trim());
    out.set(m[1], list);
  }
  return out;
}

/** One shell line for runcmd that prints `PIIMG-MARK key <output of cmd>` (one marker per output line). */
export function markCmd(key: string, cmd: string): string {
  return `(${cmd}) 2>&1 | sed 's/^/${MARK} ${key} /' > /dev/console`;
}

/** Why a boot did not reach a clean power-off, in one line; undefined when it did. */
export function diagnose(r: { log: string; timedOut: boolean; poweredOff: boolean; seconds: number; qemuStderr?: string }): string | undefined {
  const log = r.log;
  const gaveUp = /ALERT!\s+(\S+) does not exist/.exec(log);
  if (gaveUp || /Gave up waiting for root (file system )?device/.test(log)) {
    return `root file system not found: ${gaveUp?.[1] ?? 'root device'} does not exist (the initramfs gave up waiting for it)`;
  }
  const panic = /Kernel panic - not syncing: ([^\r\n]*)/.exec(log);
  if (panic) return `kernel panic: ${panic[1].trim()}`;
  if (r.poweredOff) return undefined;
  const last = log.trim().split(/\r?\n/).filter((l) => l.trim()).slice(-1)[0]?.trim() ?? '(no console output)';
  const qemuSaid = r.qemuStderr?.trim() ? `; QEMU said: ${r.qemuStderr.trim().split(/\r?\n/).slice(-3).join(' | ')}` : '';
  if (r.timedOut) return `no power-off within ${Math.round(r.seconds)} s; last console line: ${last}${qemuSaid}`;
  if (/reboot: Restarting system/.test(log)) return `the guest rebooted instead of powering off; last lines before: ${last}`;
  return `QEMU ended without a clean power-off; last console line: ${last}${qemuSaid}`;
}

/**
 * cloud-init's own complaints about the seed, as its console handler (WARNING and up) prints them: user-data it
 * could not load as YAML (with line and column) or cloud-config that failed its schema. One line each.
 */
export function seedProblems(log: string): string[] {
  const re = /(Failed loading yaml blob[^\r\n]*|Invalid cloud-config provided[^\r\n]*)/g;
  return [...log.matchAll(re)].map((m) => m[1].trim());
}

/** Events of a first boot worth a line in the README, matched on console lines. */
const EVENTS: [RegExp, string][] = [
  [/Linux version (\S+)/, 'kernel starts (Linux $1)'],
  [/Run \/init as init process/, 'initramfs /init runs'],
  [/Begin: Will now check root file system|Begin: Mounting root file system/, 'initramfs looks for the root fs'],
  [/EXT4-fs \((\S+)\): mounted filesystem/, 'root fs mounted from $1'],
  [/systemd\[1\]: systemd (\S+) running in system mode/, 'systemd $1 starts'],
  [/Cloud-init v\. (\S+) running 'init-local'/, "cloud-init $1: stage init-local (finds the NoCloud seed, writes network config)"],
  [/Cloud-init v\. \S+ running 'init' /, "cloud-init: stage init (hostname, users and keys, write_files)"],
  [/Cloud-init v\. \S+ running 'modules:config'/, 'cloud-init: stage config'],
  [/Cloud-init v\. \S+ running 'modules:final'/, 'cloud-init: stage final (runcmd, power_state)'],
  [/pi-image\[base\]: enabled first, for a reboot/, 'pi-image base: units a reboot needs enabled first'],
  [/pi-image\[clock\]: waiting up to (\d+)s for NTP/, 'pi-image clock: waits (at most $1 s) for NTP'],
  [/pi-image\[clock\]: clock (NOT synchronised after \d+s|synchronised by NTP)/, 'pi-image clock: $1'],
  [/pi-image\[packages\]: put off/, 'pi-image: packages … heketi put off (no true clock)'],
  [/PIIMG-MARK (\S+)/, 'runcmd prints its first marker ($1)'],
  [/pi-image\[scrub\]: overwriting the seed/, 'pi-image scrub: seed on the SD and cloud-init copies overwritten'],
  [/Cloud-init v\. \S+ finished at/, 'cloud-init finished'],
  [/reboot: Power down/, 'clean power-off'],
];

export interface TimelineEntry {
  seconds: number;
  event: string;
  line: string;
}

/** First occurrence of each event, from console lines stamped with seconds since QEMU started. */
export function timeline(lines: { seconds: number; line: string }[]): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  const done = new Set<number>();
  for (const { seconds, line } of lines) {
    EVENTS.forEach(([re, label], i) => {
      if (done.has(i)) return;
      const m = re.exec(line);
      if (!m) return;
      done.add(i);
      out.push({ seconds, event: label.replace(/\$1/g, m[1] ?? ''), line: line.trim() });
    });
  }
  return out.sort((a, b) => a.seconds - b.seconds);
}

export function formatTimeline(t: TimelineEntry[]): string {
  return t.map((e) => `${e.seconds.toFixed(1).padStart(6)} s  ${e.event}`).join('\n');
}
