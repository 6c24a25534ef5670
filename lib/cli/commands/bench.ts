/** `adatt bench`: runs the benchmark suite in bench/ (a source checkout has it; the npm package does not). */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import type { ParsedArgs } from '../args';
import type { Command } from '../command';
import { EXIT } from '../exit';
import type { Output } from '../output';

const PACKAGE_ROOT = path.join(__dirname, '..', '..', '..');
/** Entry points the suite may have, first match wins. */
const ENTRIES = ['bench/run.js', 'bench/index.js'];

export const benchCommand: Command = {
  spec: {
    name: 'bench',
    summary: 'run the benchmark suite (bench/ of a source checkout); arguments after -- go to it',
    description: 'Spawns `node bench/run.js` in the package folder with the given arguments (docs/benchmarks.md).',
    positionals: [{ name: 'args', description: 'arguments for the suite (put them after --)', variadic: true }],
    options: [],
    examples: ['adatt bench -- --quick', 'adatt bench -- --config adatt-sp --batch 1024 --no-peer'],
  },
  run: bench,
  handlesInterrupts: true,
};

async function bench(args: ParsedArgs, out: Output): Promise<number> {
  const entry = ENTRIES.map((file) => path.join(PACKAGE_ROOT, file)).find((file) => existsSync(file));
  if (!entry) {
    out.error(
      `no benchmark suite here: ${ENTRIES.join(' or ')} is not in ${PACKAGE_ROOT}. The suite ships with the source repository, not the npm package.`,
      'bench',
    );
    return EXIT.failure;
  }
  out.info(`node ${path.relative(process.cwd(), entry) || entry} ${args.positionals.join(' ')}`.trim());
  const child = spawn(process.execPath, [entry, ...args.positionals], { cwd: PACKAGE_ROOT, stdio: 'inherit' });
  // Ctrl-C reaches the child too (same process group): wait for it to finish rather than exit first.
  const ignore = (): void => undefined;
  process.on('SIGINT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', (code, signal) => resolve(signal === 'SIGINT' ? EXIT.interrupted : (code ?? EXIT.failure)));
    });
  } finally {
    process.off('SIGINT', ignore);
  }
}
