/**
 * The npm package as users get it: packed, installed into an empty project, imported, trained.
 * First from source (npm runs node-gyp through scripts/install/install.js), then with a prebuilt binary
 * (the first install's output, stripped, under prebuilds/) on a PATH without compiler, cmake or node-gyp.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT } from './helpers/reference';

const SMOKE = `
const adatt = require('adatt');
const size = 256;
const dense = Float32Array.from({ length: size * 4 }, (_, i) => Math.sin(i));
const labels = [Float32Array.from({ length: size }, (_, i) => (dense[4 * i] > 0 ? 1 : 0))];
(async () => {
  const model = adatt.createModel({ kind: 'adatt-sp', input: { dense: 4 }, tasks: [{ name: 'y', type: 'binary' }],
    expertDims: [[8]], expertsPerTask: 2 });
  const data = adatt.TensorDataset.fromEncoded({ size, dense, labels });
  const result = await adatt.fit(model, data, { epochs: 2, batchSize: 64 });
  const esm = await import('adatt');
  console.log(JSON.stringify({ steps: result.steps, auc: (await adatt.evaluate(model, data)).y.auc,
    esm: typeof esm.createModel, version: adatt.info().libtorchVersion }));
})().catch((err) => { console.error(err); process.exit(1); });
`;

function npm(args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  return execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000 });
}

function newProject(name: string): string {
  const dir = makeTempDir(name);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  fs.writeFileSync(path.join(dir, 'smoke.js'), SMOKE);
  return dir;
}

function runSmoke(project: string, env: NodeJS.ProcessEnv = process.env): { steps: number; auc: number; esm: string } {
  const output = execFileSync(process.execPath, ['smoke.js'], { cwd: project, env, encoding: 'utf8' });
  return JSON.parse(output.trim().split('\n').at(-1)!) as { steps: number; auc: number; esm: string };
}

/** A PATH holding only what npm itself needs: no compiler, cmake, make, python or node-gyp. */
function barePath(): string {
  const bin = makeTempDir('bare-bin');
  for (const tool of ['node', 'npm', 'npx', 'sh', 'bash', 'env']) {
    const target = execFileSync('bash', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
    fs.symlinkSync(target, path.join(bin, tool));
  }
  return bin;
}

function pack(directory: string, destination: string): string {
  return path.join(destination, npm(['pack', '--pack-destination', destination, '--silent'], directory).trim().split('\n').at(-1)!);
}

let tarball: string;

beforeAll(() => {
  // Repacked without any prebuilds/ a local `npm run prebuild` left, so the install builds from source.
  const packed = pack(REPO_ROOT, makeTempDir('pack'));
  const staging = makeTempDir('source-package');
  execFileSync('tar', ['-xzf', packed, '-C', staging]);
  fs.rmSync(path.join(staging, 'package', 'prebuilds'), { recursive: true, force: true });
  tarball = pack(path.join(staging, 'package'), makeTempDir('pack-source'));
}, 120_000);

describe('npm package', () => {
  it('contains what is needed and nothing else', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    for (const needed of [
      'package/dist/index.js',
      'package/dist/index.mjs',
      'package/dist/index.d.ts',
      'package/binding.gyp',
      'package/native/src/model.cpp',
      'package/native/build-flags.json',
      'package/scripts/install/install.js',
      'package/scripts/install/node-gyp.js',
      'package/scripts/install/find-libtorch.js',
    ]) {
      expect(files).toContain(needed);
    }
    expect(files.filter((f) => /^package\/(build|test|bench|docs|node_modules|examples)\//.test(f))).toEqual([]);
    expect(files.filter((f) => /\.(gz|data|test|csv|parquet|arrow|pt|safetensors)$/.test(f))).toEqual([]); // no data sets or weights
  });

  it('installs from source, then installs from the prebuilt binary with no compiler on PATH', () => {
    const fromSource = newProject('from-source');
    const sourceLog = npm(['install', tarball, '--no-audit', '--no-fund', '--foreground-scripts'], fromSource);
    expect(sourceLog).toMatch(/building from source/);
    // In parallel: as many compile jobs as cores and free memory allow.
    const jobs = Number(/compiling with (\d+) parallel jobs/.exec(sourceLog)?.[1]);
    expect(jobs).toBeGreaterThanOrEqual(1);
    expect(jobs).toBeLessThanOrEqual(os.availableParallelism());
    const smoke = runSmoke(fromSource);
    expect(smoke.steps).toBe(8);
    expect(smoke.esm).toBe('function');

    // The prebuilt package: the source build above, stripped, where prebuildify puts it.
    const staging = makeTempDir('prebuilt-package');
    execFileSync('tar', ['-xzf', tarball, '-C', staging]);
    const prebuilds = path.join(staging, 'package', 'prebuilds', 'linux-x64');
    fs.mkdirSync(prebuilds, { recursive: true });
    const binary = path.join(prebuilds, 'adatt.node'); // the name prebuildify --napi gives it
    fs.copyFileSync(path.join(fromSource, 'node_modules', 'adatt', 'build', 'Release', 'adatt.node'), binary);
    execFileSync('strip', ['--strip-unneeded', binary]);
    const prebuiltTarball = pack(path.join(staging, 'package'), staging);

    const prebuilt = newProject('prebuilt');
    const env = { ...process.env, PATH: barePath(), npm_config_node_gyp: '/nonexistent/node-gyp' };
    expect(() => execFileSync('bash', ['-c', 'command -v g++ || command -v cc || command -v cmake'], { env })).toThrow();
    const log = npm(['install', prebuiltTarball, '--no-audit', '--no-fund', '--foreground-scripts'], prebuilt, env);
    expect(log).toMatch(/using the prebuilt native addon/);
    expect(fs.existsSync(path.join(prebuilt, 'node_modules', 'adatt', 'build'))).toBe(false);
    const prebuiltSmoke = runSmoke(prebuilt, env);
    expect(prebuiltSmoke.steps).toBe(8);
    expect(prebuiltSmoke.auc).toBeGreaterThan(0.5);
  }, 1_200_000);
});
