/** scripts/gpu-check.sh: valid shell, and its CPU fallback path runs green (the CUDA path needs a GPU machine). */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PYTHON, REPO_ROOT } from './helpers/reference';

describe('scripts/gpu-check.sh', () => {
  it('parses', () => {
    expect(() => execFileSync('bash', ['-n', path.join(REPO_ROOT, 'scripts', 'gpu-check.sh')])).not.toThrow();
  });

  it('runs its device checks on the CPU fallback and prints the table last', () => {
    const output = execFileSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'gpu-check.js'), 'cpu', PYTHON], {
      encoding: 'utf8',
      timeout: 600_000,
      env: { ...process.env, ADATT_GPU_CHECK_ROWS: '8192' },
    });
    const table = output.slice(output.lastIndexOf('┌'));
    expect(table).toMatch(/parity cpu vs cpu: outputs/);
    expect(table).toMatch(/cpu checkpoint resumed on cpu/);
    expect(table).toMatch(/data-parallel on cpu, 2 process\(es\) over gloo/);
    expect(table).toMatch(/data-parallel on cpu with row-sparse tables, 2 process\(es\) over gloo/);
    expect(table).toMatch(/row-sparse tables \(rowwise-adagrad\) trained on cpu: weights vs cpu/);
    expect(table).toMatch(/headline training, ours \/ reference/);
    expect(table).not.toMatch(/FAIL/);
  }, 600_000);
});
