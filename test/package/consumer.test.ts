// The package as a user gets it: `npm pack`, the tarball installed into a scratch project in a temp dir (with
// the TypeScript versions users have: 5.9 and 7.x), a small strict `module: nodenext` program type-checked against
// the shipped .d.ts files (skipLibCheck, as most projects have it) and run; a wrong use of the API must fail to
// type-check (the types are real, not `any`). The CLI of the installed package runs from dist/ without tsx and
// says pi-image's version, not the consumer's. Needs the npm registry or npm's cache (--prefer-offline).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
/** The TypeScript versions checked: the one pi-image builds with (5.9) and the current 7.x (the native compiler). */
const TYPESCRIPTS = { ts5: PKG.devDependencies.typescript, ts7: '7.0.2' };

const work = mkdtempSync(join(tmpdir(), 'pi-image-consumer-'));
const project = join(work, 'app');
let tarball = '';
test.after(() => rmSync(work, { recursive: true, force: true }));

const run = (cmd: string, args: string[], cwd: string) => spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 600_000, env: { ...process.env, NO_COLOR: '1' } });

test.before(() => {
  const packed = run('npm', ['pack', '--silent', '--pack-destination', work], ROOT);
  assert.is(packed.status, 0, packed.stderr);
  tarball = join(work, packed.stdout.trim().split('\n').at(-1)!);
  execFileSync('mkdir', ['-p', project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }));
  const deps = [tarball, `ts5@npm:typescript@${TYPESCRIPTS.ts5}`, `ts7@npm:typescript@${TYPESCRIPTS.ts7}`, `@types/node@${PKG.devDependencies['@types/node']}`];
  const inst = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...deps], project);
  assert.is(inst.status, 0, inst.stderr);
});

test('the tarball holds the compiled program, its declarations, docs and LICENSE, and no TypeScript sources', () => {
  const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
  for (const f of ['package/LICENSE', 'package/README.md', 'package/bin/pi-image.js', 'package/dist/cli/pi-image.js', 'package/dist/cli/worker.js', 'package/dist/lib/index.js', 'package/dist/lib/index.d.ts', 'package/docs/build.md', 'package/images/ubuntu-19.10.1-raspi.yaml']) {
    assert.ok(files.includes(f), `${f} is packed`);
  }
  assert.not.ok(files.some((f) => f.startsWith('package/lib/')), 'no lib/ sources');
  const links = [...readFileSync(join(ROOT, 'README.md'), 'utf8').matchAll(/\]\((docs\/[^)#]+)/g)].map((m) => m[1]!);
  assert.ok(links.length > 0);
  for (const l of links) assert.ok(files.includes(`package/${l}`), `README links ${l}, which is packed`);
  const pkg = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }));
  assert.is(pkg.types, './dist/lib/index.d.ts');
  assert.not.ok('tsx' in pkg.dependencies, 'tsx is not a runtime dependency');
  assert.ok(!existsSync(join(project, 'node_modules', 'tsx')) && !existsSync(join(project, 'node_modules', 'esbuild')), 'installing pi-image pulls neither tsx nor esbuild');
});

test('the declarations leak no module without its own types (unzipper, cpio-stream, tar-stream …)', () => {
  const dts = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? dts(join(dir, e.name)) : e.name.endsWith('.d.ts') ? [join(dir, e.name)] : []));
  const text = dts(join(project, 'node_modules', 'pi-image', 'dist', 'lib')).map((f) => readFileSync(f, 'utf8')).join('\n');
  for (const m of ['unzipper', 'cpio-stream', 'tar-stream', 'xz-decompress', 'node-fetch']) {
    assert.not.match(text, new RegExp(`from '${m}'|import\\("${m}"\\)`), `${m} in the public types`);
  }
});

const GOOD = `import { listCatalog, loadProfile, readMbr, MemoryIO, InputError, PACKAGE_VERSION, type CatalogEntry, type BuildOptions } from 'pi-image';
const ids: string[] = listCatalog().map((e: CatalogEntry) => e.id);
const { profile } = await loadProfile();
const names: string[] = profile.nodes.map((n) => n.name);
const disk = new MemoryIO(Buffer.alloc(512));
let mbrError = '';
try { readMbr(disk); } catch (e) { mbrError = (e as Error).constructor.name; }
const opts: BuildOptions = { nodes: 'all', outDir: 'out' };
console.log(JSON.stringify({ version: PACKAGE_VERSION, ids, names, mbrError, input: new InputError('x') instanceof Error, nodes: opts.nodes }));
`;
const BAD = `import { listCatalog, type BuildOptions } from 'pi-image';
const n: number = listCatalog()[0]!.id;
const o: BuildOptions = { nodes: 3 };
console.log(n, o);
`;

for (const [ts, version] of Object.entries(TYPESCRIPTS)) {
  test(`TypeScript ${version}: a strict nodenext program type-checks against the package and runs`, () => {
    const dir = join(project, ts);
    execFileSync('mkdir', ['-p', dir]);
    const config = { compilerOptions: { strict: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: true, types: ['node'], outDir: 'build' }, files: ['main.ts'] };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(config));
    writeFileSync(join(dir, 'main.ts'), GOOD);
    const tsc = join(project, 'node_modules', ts, 'bin', 'tsc');
    const r = run(process.execPath, [tsc, '-p', '.'], dir);
    assert.is(r.status, 0, `tsc ${version}: ${r.stdout}${r.stderr}`);
    const out = run(process.execPath, [join(dir, 'build', 'main.js')], dir);
    assert.is(out.status, 0, out.stderr);
    const res = JSON.parse(out.stdout);
    assert.is(res.version, PKG.version);
    assert.ok(res.ids.includes('ubuntu-19.10.1-raspi'));
    assert.equal(res.names, ['node1', 'node2', 'node3', 'node4']);
    assert.is(res.mbrError, 'CorruptImageError');
    assert.is(res.input, true);

    const bad = join(project, `${ts}-bad`);
    execFileSync('mkdir', ['-p', bad]);
    writeFileSync(join(bad, 'tsconfig.json'), JSON.stringify({ ...config, compilerOptions: { ...config.compilerOptions, noEmit: true } }));
    writeFileSync(join(bad, 'main.ts'), BAD);
    const b = run(process.execPath, [tsc, '-p', '.'], bad);
    assert.is.not(b.status, 0);
    assert.match(b.stdout, /main\.ts\(2,\d+\): error TS2322/);
    assert.match(b.stdout, /main\.ts\(3,\d+\): error TS2322/);
    assert.not.match(b.stdout, /node_modules\/pi-image|TS5097|TS7016/);
  });
}

test("the installed CLI runs from dist/ without tsx and prints pi-image's version, not the project's", () => {
  const bin = join(project, 'node_modules', '.bin', 'pi-image');
  const v = run(bin, ['--version'], project);
  assert.is(v.status, 0, v.stderr);
  assert.is(v.stdout.trim(), PKG.version);
  const h = run(bin, ['images', 'list'], project);
  assert.is(h.status, 0, h.stderr);
  assert.match(h.stdout, /\* ubuntu-19\.10\.1-raspi/);
});

test.run();
