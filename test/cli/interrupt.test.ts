/** Ctrl-C during `adatt train`: stop before the next batch, save a checkpoint, report, exit 130; then resume. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { adatt, events, requireCompiledCli, tempDir } from './helpers';

const work = tempDir('interrupt');
const run = path.join(work, 'run');
/** Long enough that Ctrl-C always lands mid-run: many small batches. */
const LONG_RUN = [
  '--data',
  'synthetic',
  '--set',
  'data.size=20000',
  '--set',
  'data.inputDim=20',
  '--epochs',
  '200',
  '--threads',
  '1',
  '--batch-size',
  '32',
  '--set',
  'model.expertDims=[[16],[8]]',
];

beforeAll(() => requireCompiledCli());

describe('SIGINT during adatt train', () => {
  it('saves the weights at the interrupt, writes the report and exits 130', async () => {
    let sent = false;
    const result = await adatt(['train', ...LONG_RUN, '--out', run, '--json'], {
      onStdout: (child, stdout) => {
        // After the first finished epoch, so that there is also an epoch checkpoint to resume from.
        if (!sent && stdout.includes('"event":"epoch"')) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(sent).toBe(true);
    expect(result.code).toBe(130);
    expect(result.stderr).toContain('stopping before the next batch');
    expect(result.stderr).toContain(`the weights at the interrupt are in ${path.join(run, 'checkpoints', 'interrupted.adatt')}`);
    expect(events(result.stdout).map((e) => e.event)).toContain('interrupted');
    const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    expect(info.status).toBe('interrupted');
    expect(info.files.interrupted).toBe(path.join('checkpoints', 'interrupted.adatt'));
    expect(info.training.completedEpochs).toBeGreaterThanOrEqual(1);
    expect(info.training.completedEpochs).toBeLessThan(200);
    expect(fs.existsSync(path.join(run, 'report.html'))).toBe(true);
    expect(fs.readFileSync(path.join(run, 'report.html'), 'utf8')).toContain('class="status interrupted"');
  }, 60_000);

  it('leaves a checkpoint that the other commands use, and an epoch checkpoint to resume from', async () => {
    const evaluated = await adatt(['eval', path.join(run, 'checkpoints', 'interrupted.adatt')]);
    expect(evaluated.code).toBe(0);
    expect(evaluated.stdout).toMatch(/^task\s+rmse/);
    const info = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    const epochCheckpoint = path.join(run, info.files.checkpoints.at(-1));
    const finished = info.training.completedEpochs as number;
    const resumed = await adatt([
      'train',
      path.join(run, 'config.json'),
      '--resume',
      epochCheckpoint,
      '--epochs',
      String(finished + 1),
      '--out',
      path.join(work, 'resumed'),
    ]);
    expect(resumed.stderr).toContain(`epoch ${finished + 1}/${finished + 1}`);
    expect(resumed.code).toBe(0);
    const lines = fs
      .readFileSync(path.join(work, 'resumed', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n');
    expect(lines).toHaveLength(finished + 2);
  }, 60_000);
});
