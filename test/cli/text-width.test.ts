// lib/cli/text-width.ts, which the bundled CLI uses in place of string-width: it must agree with string-width on
// the texts the CLI lays out (help, spinner lines, paths, node names) and on the usual wide and zero-width cases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import stringWidth from 'string-width';
import textWidth from '../../lib/cli/text-width.ts';

const samples = [
  '',
  'pi-image build [nodes..]',
  '  --out      Output directory                                        [string] [default: "out"]',
  '\u001b[32m✔\u001b[39m node1: sd.img 256.0 MiB, ssd.img 3.0 GiB',
  '\u001b]8;;https://example.org\u0007link\u001b]8;;\u0007',
  '⠋ writing node1/ssd.img 42%',
  'Größe café naïve',
  'e\u0301',
  '日本語のテキスト',
  'ｆｕｌｌｗｉｄｔｈ',
  '한국어',
  '🚀 done',
  'zero\u200bwidth',
  'tab\tand\u0007bell',
  '…',
];

test('agrees with string-width on help, progress and Unicode samples', () => {
  for (const s of samples) assert.is(textWidth(s), stringWidth(s), JSON.stringify(s));
});

test('escape sequences count when asked, as in string-width', () => {
  const s = '\u001b[1mbold\u001b[22m';
  assert.is(textWidth(s), 4);
  assert.is(textWidth(s, { countAnsiEscapeCodes: true }), stringWidth(s, { countAnsiEscapeCodes: true }));
});

test('the bundled CLI (dist/cli/, scripts/bundle.mjs) holds it and no string-width', () => {
  const inputs = Object.values(JSON.parse(readFileSync(new URL('../../dist/cli/inputs.json', import.meta.url), 'utf8')) as Record<string, string[]>).flat();
  assert.ok(inputs.some((f) => f.startsWith('node_modules/cliui/')), 'yargs\' cliui is in the bundle');
  assert.ok(inputs.includes('lib/cli/text-width.ts'));
  assert.equal(inputs.filter((f) => f.includes('node_modules/string-width/') || f.includes('/node_modules/string-width/')), []);
});

test.run();
