// Terminal column width of a string: what the bundled CLI gives yargs' help layout (cliui, wrap-ansi) and ora's
// spinner line in place of the string-width package (scripts/bundle.mjs aliases it here).
// Why: string-width 8 builds an Intl.Segmenter and /v regular expressions over Unicode emoji properties when it is
// loaded, and 7 segments every string it measures; together about 45 ms of a 140 ms CPU profile of `build --help`,
// for texts that are ours (ASCII, a few symbols) and paths.
// Invariants: called as string-width is (text, { countAnsiEscapeCodes }); ambiguous-width characters count 1,
// string-width's default; printable ASCII is its length; escape sequences count 0 unless asked; control
// characters, combining marks, zero-width spaces and variation selectors count 0; East Asian wide and fullwidth
// characters and pictographic emoji count 2 (Markus Kuhn's wcwidth ranges); everything else counts 1.

// CSI sequences (colours, cursor) and OSC sequences (hyperlinks, titles), as ansi-regex matches them.
const ANSI = /[\u001B\u009B][[\]()#;?]*(?:(?:(?:(?:;[-a-zA-Z\d/#&.:=?%@~_]+)*|[a-zA-Z\d]+(?:;[-a-zA-Z\d/#&.:=?%@~_]*)*)?\u0007)|(?:(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PR-TZcf-ntqry=><~]))/g;
const PRINTABLE_ASCII = /^[\u0020-\u007E]*$/;
const ZERO_WIDTH = /[\p{Mn}\p{Me}\p{Cf}\u200B\uFE00-\uFE0F]/u;

// Inclusive [first, last] code point ranges two columns wide, sorted.
const WIDE: readonly number[] = [
  0x1100, 0x115f, 0x231a, 0x231b, 0x2329, 0x232a, 0x23e9, 0x23ec, 0x23f0, 0x23f0, 0x23f3, 0x23f3, 0x25fd, 0x25fe,
  0x2614, 0x2615, 0x2648, 0x2653, 0x267f, 0x267f, 0x2693, 0x2693, 0x26a1, 0x26a1, 0x26aa, 0x26ab, 0x26bd, 0x26be,
  0x26c4, 0x26c5, 0x26ce, 0x26ce, 0x26d4, 0x26d4, 0x26ea, 0x26ea, 0x26f2, 0x26f3, 0x26f5, 0x26f5, 0x26fa, 0x26fa,
  0x26fd, 0x26fd, 0x2705, 0x2705, 0x270a, 0x270b, 0x2728, 0x2728, 0x274c, 0x274c, 0x274e, 0x274e, 0x2753, 0x2755,
  0x2757, 0x2757, 0x2795, 0x2797, 0x27b0, 0x27b0, 0x27bf, 0x27bf, 0x2b1b, 0x2b1c, 0x2b50, 0x2b50, 0x2b55, 0x2b55,
  0x2e80, 0x303e, 0x3041, 0x33ff, 0x3400, 0x4dbf, 0x4e00, 0x9fff, 0xa000, 0xa4cf, 0xa960, 0xa97f, 0xac00, 0xd7a3,
  0xf900, 0xfaff, 0xfe10, 0xfe19, 0xfe30, 0xfe6f, 0xff00, 0xff60, 0xffe0, 0xffe6, 0x16fe0, 0x18aff, 0x1b000, 0x1b2ff,
  0x1f004, 0x1f004, 0x1f0cf, 0x1f0cf, 0x1f18e, 0x1f18e, 0x1f191, 0x1f19a, 0x1f200, 0x1f2ff, 0x1f300, 0x1f64f,
  0x1f680, 0x1f6ff, 0x1f7e0, 0x1f7eb, 0x1f90c, 0x1f9ff, 0x1fa70, 0x1faff, 0x20000, 0x2fffd, 0x30000, 0x3fffd,
];

function isWide(cp: number): boolean {
  let lo = 0;
  let hi = WIDE.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < WIDE[mid * 2]!) hi = mid - 1;
    else if (cp > WIDE[mid * 2 + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

export default function stringWidth(text: string, options: { countAnsiEscapeCodes?: boolean } = {}): number {
  if (typeof text !== 'string' || text.length === 0) return 0;
  if (PRINTABLE_ASCII.test(text)) return text.length;
  const visible = options.countAnsiEscapeCodes ? text : text.replace(ANSI, '');
  let width = 0;
  for (const ch of visible) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || ZERO_WIDTH.test(ch)) continue;
    width += isWide(cp) ? 2 : 1;
  }
  return width;
}
