// Kernel command line editing: replace root=, ensure rootwait, add the USB quirk and cgroup flags, keep every other
// argument in its place, one line, and the file's own trailing-newline style.

export interface CmdlineEdit {
  /**
   * New root= value, e.g. `PARTUUID=2a7b5e1c-02`: without an initramfs the kernel understands /dev/sdXN and
   * PARTUUID= (MBR disk signature in hex, partition number); LABEL= and UUID= need one (kernel-parameters.txt, root=).
   */
  root?: string;
  rootfstype?: string;
  /** key → value sets or replaces `key=value` in place (first occurrence; later duplicates dropped); null removes. */
  set?: Record<string, string | null>;
  /**
   * Arguments to add when absent (exact token match, so repeated keys like `cgroup_enable=cpuset
   * cgroup_enable=memory` both stay). `usb-storage.quirks=` entries are merged into an existing list by VID:PID.
   */
  add?: string[];
  /** Keys (`splash`, `quiet`, `console`) or exact tokens (`console=tty1`) to drop. */
  remove?: string[];
}

/** Split a command line into arguments; double-quoted values may hold spaces (`dyndbg="file x +p"`). */
export function splitCmdline(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let has = false;
  for (const ch of line) {
    if (ch === '"') {
      quoted = !quoted;
      cur += ch;
      has = true;
    } else if (!quoted && /\s/.test(ch)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

/** The key of an argument: the part before the first '=' (the whole token for flags like `rootwait`). */
export function argKey(token: string): string {
  const i = token.indexOf('=');
  return i < 0 ? token : token.slice(0, i);
}

/** The value of the first `key=` argument, or undefined. */
export function cmdlineValue(line: string, key: string): string | undefined {
  const t = splitCmdline(line).find((a) => argKey(a) === key);
  return t === undefined ? undefined : t.slice(key.length + 1);
}

const QUIRKS = 'usb-storage.quirks';

function mergeQuirks(existing: string, extra: string): string {
  const list = existing.split(',').filter(Boolean);
  for (const q of extra.split(',').filter(Boolean)) {
    const id = q.split(':').slice(0, 2).join(':').toLowerCase();
    const i = list.findIndex((e) => e.split(':').slice(0, 2).join(':').toLowerCase() === id);
    if (i >= 0) list[i] = q;
    else list.push(q);
  }
  return list.join(',');
}

/**
 * Edit one kernel command line. `text` may be a whole cmdline file: only its first line is the command line; the
 * result keeps the file's trailing newline (or its absence) and CRLF style.
 */
export function editCmdline(text: string, edit: CmdlineEdit = {}): string {
  const nl = /\r?\n/.exec(text);
  const eol = nl ? nl[0] : '';
  const line = nl ? text.slice(0, nl.index) : text;
  let args = splitCmdline(line);

  const setKey = (key: string, value: string | null): void => {
    const first = args.findIndex((a) => argKey(a) === key);
    const token = value === null ? null : `${key}=${value}`;
    if (first < 0) {
      if (token !== null) args.push(token);
      return;
    }
    args = args.filter((a, i) => i === first || argKey(a) !== key);
    if (token === null) args.splice(first, 1);
    else args[first] = token;
  };

  for (const r of edit.remove ?? []) args = args.filter((a) => a !== r && argKey(a) !== r);
  if (edit.root !== undefined) setKey('root', edit.root);
  if (edit.rootfstype !== undefined) setKey('rootfstype', edit.rootfstype);
  for (const [k, v] of Object.entries(edit.set ?? {})) setKey(k, v);
  for (const token of edit.add ?? []) {
    for (const t of splitCmdline(token)) {
      if (argKey(t) === QUIRKS && t.includes('=')) {
        const cur = args.find((a) => argKey(a) === QUIRKS);
        setKey(QUIRKS, cur === undefined ? t.slice(QUIRKS.length + 1) : mergeQuirks(cur.slice(QUIRKS.length + 1), t.slice(QUIRKS.length + 1)));
      } else if (!args.includes(t)) args.push(t);
    }
  }
  if (!args.includes('rootwait')) {
    // rootwait: USB disks appear late; put it right after root= settings when adding it.
    const at = Math.max(args.findIndex((a) => argKey(a) === 'rootfstype'), args.findIndex((a) => argKey(a) === 'root'));
    args.splice(at < 0 ? args.length : at + 1, 0, 'rootwait');
  }
  return args.join(' ') + eol;
}

/**
 * Turn on the cpuset and memory cgroup controllers kubelet needs: the Pi kernels leave the memory controller off
 * unless the command line asks for it (`cgroup_enable=` in the kernel's kernel-parameters.txt).
 */
export const K8S_CGROUP_ARGS = ['cgroup_enable=cpuset', 'cgroup_enable=memory', 'cgroup_memory=1'];
