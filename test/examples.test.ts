/**
 * Every example runs to completion (small sizes through their environment variables) and prints
 * what it promises. They use the compiled package (dist/), like a user's `require('adatt')`.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = path.join(__dirname, '..');

function runExample(file: string, env: Record<string, string> = {}, args: string[] = []): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'examples', file), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ADATT_THREADS: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      output += text;
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      output += text;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('examples', () => {
  it('own-csv.js: a CSV with a schema, three task types, evaluation and a checkpoint', async () => {
    const { code, output } = await runExample('own-csv.js', { ADATT_EXAMPLE_ROWS: '3000', ADATT_EPOCHS: '2' });
    expect(output).toContain('events.csv: 3000 rows; tasks click (binary), rating (multiclass), watch (regression)');
    expect(output).toMatch(/epoch 2: click auc 0\.\d+/);
    expect(output).toContain('Test metrics');
    const checkpoint = output.match(/checkpoint: (\S+\.adatt)/)?.[1];
    expect(checkpoint && fs.existsSync(checkpoint)).toBe(true);
    expect(code).toBe(0);
  }, 60_000);

  it('task-weighting.js: every strategy on census-income over seeds, mean ± sd and the learned weights', async () => {
    const { code, output } = await runExample('task-weighting.js', { ADATT_SEEDS: '2', ADATT_EPOCHS: '1', ADATT_EXAMPLE_ROWS: '3000' });
    expect(output).toContain('census-income: 3000 training rows, tasks income, marital, education; 2 seeds x 1 epochs per strategy');
    for (const strategy of ['fixed', 'uncertainty', 'gradnorm', 'dwa']) {
      expect(output).toMatch(new RegExp(`│ ${strategy} +│ '0\\.\\d{4} ± 0\\.\\d{4}'`));
    }
    expect(output).toMatch(/gradnorm: income \d\.\d{3}, marital \d\.\d{3}, education \d\.\d{3}/);
    expect(code).toBe(0);
  }, 120_000);

  it('torchscript-finetune.js: makes a TorchScript model with PyTorch, fine-tunes and saves it', async () => {
    const { code, output } = await runExample('torchscript-finetune.js', { ADATT_EXAMPLE_ROWS: '800', ADATT_EPOCHS: '6' });
    expect(output).toContain('scripted.pt: methods forward, probabilities');
    expect(output).toMatch(/click AUC 0\.\d+ -> 0\.\d+/);
    const saved = output.match(/saved (\S+fine-tuned\.pt)/)?.[1];
    expect(saved && fs.existsSync(saved)).toBe(true);
    expect(code).toBe(0);
  }, 60_000);

  it('serve-http.js: PredictionServer answers rows and candidates, merges concurrent requests, rejects bad rows', async () => {
    const { code, output } = await runExample('serve-http.js');
    expect(output).toMatch(/serving adatt-sp \(click, rating, watch\) on http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toContain('POST /predict (3 rows) -> 200');
    expect(output).toMatch(/"click": 0\.\d+/);
    expect(output).toMatch(/POST \/score \(1 user, 3 candidates\) -> 200: click 0\.\d+, 0\.\d+, 0\.\d+/);
    expect(output).toContain(`8 concurrent requests -> ${Array(8).fill(200).join(', ')}`);
    const [, requests, calls] = output.match(/GET \/metrics -> (\d+) requests in (\d+) model calls/) ?? [];
    expect(Number(requests)).toBe(10);
    expect(Number(calls)).toBeLessThan(10);
    expect(output).toContain('POST /predict with age "old" -> 400 (rows[0].age)');
    expect(output).toContain('self-test passed; server stopped');
    expect(code).toBe(0);
  }, 60_000);

  it('distributed-training.js: launches 2 workers that end with identical weights', async () => {
    const { code, output } = await runExample('distributed-training.js', { ADATT_EPOCHS: '2' });
    expect(output).toContain('launching 2 workers');
    expect(output).toMatch(/epoch 2\/2 on 2 workers: validation rmse y1 \d/);
    const checksums = [...output.matchAll(/rank \d: \d+ steps, weight checksum (-?[\d.]+)/g)].map((m) => m[1]);
    expect(checksums).toHaveLength(2);
    expect(checksums[0]).toBe(checksums[1]);
    expect(output).toContain('workers exited with 0, 0');
    expect(code).toBe(0);
  }, 120_000);

  // About 30 s on two shared cores: UCI census from ../shared/data (or synthetic data without it).
  it('census-quickstart.js: AdaTT on census with per-task test metrics', async () => {
    const { code, output } = await runExample('census-quickstart.js', { ADATT_THREADS: '2' });
    expect(output).toContain('Test metrics');
    expect(output).toMatch(/done in [\d.]+ s/);
    expect(code).toBe(0);
  }, 180_000);
});
