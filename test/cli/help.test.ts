// Every command and subcommand has --help with an Examples section (the list is read from the help itself, so a
// new command is covered without touching this test), and --version prints pi-image's own version even when the
// current directory is another project with its own package.json.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OWN_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function cli(args: string[], cwd = ROOT): { code: number | null; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', CI: '1' };
  delete env.FORCE_COLOR;
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'pi-image.js'), ...args], { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The commands a help text lists under "Commands:", as argument lists (`images fetch`). */
function listed(help: string, prefix: string[]): string[][] {
  const section = /\nCommands:\n([\s\S]*?)\n\n/.exec(help)?.[1] ?? '';
  return section
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((w) => w[0] === 'pi-image')
    .map((w) => [...prefix, w[prefix.length + 1]!]);
}

test('--help of every command and subcommand has Examples', () => {
  const top = cli(['--help']);
  assert.is(top.code, 0, top.stderr);
  assert.match(top.stdout, /\nExamples:\n/);
  const queue = listed(top.stdout, []);
  assert.ok(queue.length >= 10, `the top-level help lists the commands:\n${top.stdout}`);
  const seen: string[] = [];
  while (queue.length) {
    const cmd = queue.shift()!;
    const r = cli([...cmd, '--help']);
    assert.is(r.code, 0, `${cmd.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, /\nExamples:\n {2}pi-image /, `${cmd.join(' ')} --help has no Examples:\n${r.stdout}`);
    seen.push(cmd.join(' '));
    queue.push(...listed(r.stdout, cmd));
  }
  for (const c of ['images list', 'images fetch', 'images verify', 'images prune', 'drives', 'inspect', 'ls', 'cat', 'build', 'flash', 'init', 'seed', 'netboot']) {
    assert.ok(seen.includes(c), `${c} was checked (checked: ${seen.join(', ')})`);
  }
});

test("--version prints pi-image's own version, not the package.json of the current directory", () => {
  const other = mkdtempSync(join(tmpdir(), 'pi-image-consumer-'));
  try {
    writeFileSync(join(other, 'package.json'), JSON.stringify({ name: 'someone-else', version: '9.8.7' }));
    for (const args of [['--version'], ['--quiet', '--version']]) {
      const r = cli(args, other);
      assert.is(r.code, 0, r.stderr);
      assert.is(r.stdout.trim(), OWN_VERSION, args.join(' '));
    }
  } finally {
    rmSync(other, { recursive: true, force: true });
  }
});

const bundleUrl = pathToFileURL(join(ROOT, 'dist', 'cli')).href + '/';
let inputs: Record<string, string[]> | undefined;
/** dist/cli/inputs.json (scripts/bundle.mjs): the sources of each file of the bundle. */
const bundleInputs = (): Record<string, string[]> => (inputs ??= JSON.parse(readFileSync(join(ROOT, 'dist', 'cli', 'inputs.json'), 'utf8')) as Record<string, string[]>);

test('--help and --version load no pipeline, profile parser or decompressor (the commands import those when run)', () => {
  // A module hook that writes every URL Node resolves to stderr.
  const dir = mkdtempSync(join(tmpdir(), 'pi-image-hook-'));
  writeFileSync(join(dir, 'hooks.mjs'), 'export async function resolve(s, c, next) {\n  const r = await next(s, c);\n  process.stderr.write(`RESOLVED ${r.url}\\n`);\n  return r;\n}\n');
  writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);
  const hook = join(dir, 'register.mjs');
  for (const args of [['--help'], ['--version'], ['build', '--help'], ['images', 'fetch', '--help']]) {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', CI: '1' };
    delete env.FORCE_COLOR;
    const r = spawnSync(process.execPath, ['--import', hook, join(ROOT, 'bin', 'pi-image.js'), ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
    assert.is(r.status, 0, r.stderr);
    // From the bundle (dist/cli/), each file Node loaded stands for the sources esbuild put in it.
    const urls = r.stderr.split('\n').filter((l) => l.startsWith('RESOLVED ')).map((l) => l.slice(9))
      .flatMap((u) => (u.startsWith(bundleUrl) ? (bundleInputs()[u.slice(bundleUrl.length)] ?? [u]).map((src) => `file://${ROOT}/${src}`) : [u]));
    assert.ok(urls.some((u) => /\/lib\/paths\.(ts|js)$/.test(u)), `the hook saw pi-image's modules: ${urls.length} URLs`);
    const heavy = urls.filter((u) => /node_modules\/(zod|yaml|unzipper|bluebird|node-fetch|tar-stream|cpio-stream|ora)\/|\/lib\/(build|source|flash|inspect|netboot|image)\//.test(u));
    assert.equal(heavy, [], `${args.join(' ')} loaded ${heavy.join(', ')}`);
  }
  rmSync(dir, { recursive: true, force: true });
});

test.run();
