/** Runs the `adatt` command (bin/adatt.js on the compiled dist/cli) in child processes. */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO_ROOT = path.join(__dirname, '..', '..');
export const BIN = path.join(REPO_ROOT, 'bin', 'adatt.js');
export const SHARED_DATA = path.join(REPO_ROOT, '..', 'shared', 'data');

function newestMtime(dir: string): number {
  return Math.max(
    ...fs.readdirSync(dir, { withFileTypes: true }).map((entry) => {
      const file = path.join(dir, entry.name);
      return entry.isDirectory() ? newestMtime(file) : fs.statSync(file).mtimeMs;
    }),
  );
}

/** The CLI tests run the compiled code: fail clearly when it is missing or older than lib/cli. */
export function requireCompiledCli(): void {
  const compiled = path.join(REPO_ROOT, 'dist', 'cli', 'index.js');
  if (!fs.existsSync(compiled) || fs.statSync(compiled).mtimeMs < newestMtime(path.join(REPO_ROOT, 'lib', 'cli')) - 1000) {
    throw new Error('dist/cli is missing or older than lib/cli: run `npm run build:ts` first');
  }
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `adatt-cli-${prefix}-`));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** Called with the child and each stdout chunk, e.g. to send SIGINT at the right moment. */
  onStdout?: (child: ChildProcess, text: string) => void;
}

/** Spawns `node bin/adatt.js ...args`; colours off, no terminal. */
export function adatt(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...options.env };
    delete env.FORCE_COLOR;
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdout += text;
      options.onStdout?.(child, stdout);
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** The JSON-lines events of a --json run. */
export function events(stdout: string): { event: string; [key: string]: unknown }[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as { event: string });
}

/** A small, quick synthetic run's flags (2 epochs, a few thousand rows, one thread). */
export const SMALL_RUN = [
  '--data',
  'synthetic',
  '--set',
  'data.size=2000',
  '--set',
  'data.inputDim=8',
  '--epochs',
  '2',
  '--threads',
  '1',
  '--batch-size',
  '128',
  '--set',
  'model.expertDims=[[16],[8]]',
  '--set',
  'model.towerDims=[4]',
];
