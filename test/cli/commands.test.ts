/**
 * The `adatt` command end to end on small data: train writes a complete run directory, the other
 * commands read it, and every failure has its exit code (0 ok, 1 runtime, 2 usage/config, 130 Ctrl-C).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint, readParquet } from '../../lib';
import { adatt, events, REPO_ROOT, requireCompiledCli, SMALL_RUN, tempDir } from './helpers';

const work = tempDir('commands');
const run = path.join(work, 'run');
let trainEvents: ReturnType<typeof events>;

beforeAll(async () => {
  requireCompiledCli();
  const result = await adatt(['train', ...SMALL_RUN, '--set', 'training.earlyStopping.metric=rmse', '--out', run, '--json']);
  expect(result.stderr).not.toContain('error');
  expect(result.code).toBe(0);
  trainEvents = events(result.stdout);
}, 60_000);

function readJson(file: string): Record<string, any> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
}

describe('adatt train', () => {
  it('emits JSON-lines events from start to done', () => {
    const names = trainEvents.map((e) => e.event);
    expect(names.slice(0, 3)).toEqual(['run', 'data', 'model']);
    expect(names.filter((n) => n === 'epoch')).toHaveLength(2);
    expect(names.slice(-2)).toEqual(['test', 'done']);
    expect(trainEvents.at(-1)).toMatchObject({ dir: run, status: 'completed' });
  });

  it('writes the run directory: config, run, metrics, gates, model, checkpoints, report', async () => {
    for (const file of ['config.json', 'run.json', 'metrics.jsonl', 'gates.json', 'model.adatt', 'report.html']) {
      expect(fs.existsSync(path.join(run, file)), file).toBe(true);
    }
    expect(fs.readdirSync(path.join(run, 'checkpoints'))).toContain('epoch-0001.adatt');
    const info = readJson(path.join(run, 'run.json'));
    expect(info).toMatchObject({ status: 'completed', dataset: { name: 'synthetic', rows: { train: 1600, validation: 200, test: 200 } } });
    expect(info.training).toMatchObject({ epochs: 2, completedEpochs: 2, monitor: { metric: 'rmse', task: 'mean' } });
    expect(info.model.parts.reduce((sum: number, part: { parameters: number }) => sum + part.parameters, 0)).toBe(info.model.parameters);
    const lines = fs
      .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(lines.map((line) => line.type)).toEqual(['epoch', 'epoch', 'test']);
    expect(Object.keys(lines[0].loss)).toEqual(['y1', 'y2']);
    expect(lines[1].validation.y1.rmse).toBeGreaterThan(0);
    const gates = readJson(path.join(run, 'gates.json'));
    expect(gates).toMatchObject({ split: 'validation', rows: 200 });
    expect(gates.levels[0].gates).toEqual(['y1', 'y2']);
    for (const row of gates.levels[0].weights) expect(row.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 5);
    const { model, schema } = await loadCheckpoint(path.join(run, 'model.adatt'));
    expect(schema?.tasks.map((task) => task.name)).toEqual(['y1', 'y2']);
    model.dispose();
  });

  it('writes a resolved config that reproduces the run', async () => {
    const config = readJson(path.join(run, 'config.json'));
    expect(config.model).toMatchObject({ kind: 'adatt-sp', expertDims: [[16], [8]], towerDims: [4], expertsPerTask: 2 });
    expect(config.training).toMatchObject({ epochs: 2, threads: 1, batchSize: 128 });
    const dry = await adatt(['train', path.join(run, 'config.json'), '--dry-run']);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toEqual(config);
  });

  it('exits 2 with the field, the allowed values and the flag for config errors, and leaves no run behind', async () => {
    const out = path.join(work, 'bad');
    const kind = await adatt(['train', '--model', 'moe', '--out', out]);
    expect(kind.code).toBe(2);
    expect(kind.stderr).toContain("model.kind must be one of 'adatt-sp', 'adatt', 'mmoe'");
    expect(kind.stderr).toContain('(set by --model)');
    const optimizer = await adatt(['train', ...SMALL_RUN, '--optimizer', 'adm', '--out', out]);
    expect(optimizer.code).toBe(2);
    expect(optimizer.stderr).toMatch(/training\.optimizer\.type: .*'adam', 'adamw', 'adagrad', 'sgd', got "adm" \(set by --optimizer\)/);
    expect(fs.existsSync(out)).toBe(false);
    const option = await adatt(['train', '--epoch', '3']);
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('unknown option --epoch (did you mean --epochs?)');
    const json = await adatt(['train', '--data', 'census', '--json']);
    expect(json.code).toBe(2);
    expect(events(json.stdout).at(-1)).toMatchObject({ event: 'error', exitCode: 2, field: 'data.source', flag: '--data' });
  });

  it('exits 1 for runtime failures such as missing data files', async () => {
    const out = path.join(work, 'missing');
    const result = await adatt(['train', '--data', 'adult', '--set', `data.dataDir=${work}`, '--out', out]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('The adult file adult.data is not in');
  });

  it('refuses to overwrite a run unless asked', async () => {
    const result = await adatt(['train', ...SMALL_RUN, '--out', run]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('already holds a run');
  });

  /** A data-file config whose CSV has `rows` after the header x,c,y (y: a binary label). */
  function csvConfig(name: string, rows: string[]): string {
    fs.writeFileSync(path.join(work, `${name}.csv`), ['x,c,y', ...rows].join('\n'));
    const config = path.join(work, `${name}.json`);
    fs.writeFileSync(
      config,
      JSON.stringify({
        data: {
          source: `${name}.csv`,
          schema: { dense: ['x'], categorical: ['c'], tasks: [{ name: 'y', type: 'binary', column: 'y', positive: '1' }] },
        },
        training: { epochs: 1, threads: 1 },
      }),
    );
    return config;
  }

  function tree(dir: string): string[] {
    return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
  }

  it('refuses a non-empty folder that holds no run, and never deletes or overwrites files it did not write', async () => {
    const ragged = csvConfig('ragged', ['1,a,1', '2,b,0,9']);
    const mine = path.join(work, 'mine');
    fs.mkdirSync(path.join(mine, 'checkpoints'), { recursive: true });
    fs.writeFileSync(path.join(mine, 'config.json'), '{"mine": true}');
    fs.writeFileSync(path.join(mine, 'checkpoints', 'my-model.bin'), 'weights');
    const refused = await adatt(['train', ragged, '--out', mine]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('is not empty and holds no run');
    const clash = await adatt(['train', ragged, '--out', mine, '--overwrite']);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toContain('has its own checkpoints, config.json, which the run would overwrite');
    expect(tree(mine)).toEqual(['checkpoints', 'checkpoints/my-model.bin', 'config.json']);
    expect(fs.readFileSync(path.join(mine, 'config.json'), 'utf8')).toBe('{"mine": true}');

    // With --overwrite the run goes beside the folder's files; failing, it removes only its own.
    const beside = path.join(work, 'beside');
    fs.mkdirSync(beside);
    fs.writeFileSync(path.join(beside, 'notes.txt'), 'mine');
    const failed = await adatt(['train', ragged, '--out', beside, '--overwrite']);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain('line 3 of ragged.csv: 4 fields, expected 3');
    expect(tree(beside)).toEqual(['notes.txt']);
    const file = await adatt(['train', ragged, '--out', path.join(beside, 'notes.txt')]);
    expect(file.code).toBe(2);
    expect(file.stderr).toContain('is a file, expected a directory');
  });

  it("replaces only the earlier run's files with --overwrite", async () => {
    const earlier = path.join(work, 'earlier');
    expect(
      (
        await adatt([
          'train',
          csvConfig(
            'two-class',
            Array.from({ length: 60 }, (_, i) => `${i},a,${i % 2}`),
          ),
          '--out',
          earlier,
        ])
      ).code,
    ).toBe(0);
    fs.writeFileSync(path.join(earlier, 'notes.txt'), 'mine');
    fs.writeFileSync(path.join(earlier, 'checkpoints', 'my-model.bin'), 'weights');
    const failed = await adatt(['train', csvConfig('ragged', ['1,a,1', '2,b,0,9']), '--out', earlier, '--overwrite']);
    expect(failed.code).toBe(2);
    expect(tree(earlier)).toEqual(['checkpoints', 'checkpoints/my-model.bin', 'notes.txt']);
  });

  it('trains a binary task whose labels hold one class, showing its undefined metrics as –', async () => {
    const out = path.join(work, 'one-class');
    const result = await adatt([
      'train',
      csvConfig(
        'one-class',
        Array.from({ length: 60 }, (_, i) => `${i},a,1`),
      ),
      '--out',
      out,
    ]);
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/val y auc –/);
    expect(result.stdout).toMatch(/\ny\s+–\s+–\s+\d\.\d{4}/);
    expect(readJson(path.join(out, 'run.json')).status).toBe('completed');
    expect(fs.existsSync(path.join(out, 'report.html'))).toBe(true);
  });
  it('trains ESMM with a sample space, DWA, sample weights, groups and gradient conflict from a run config, recording and plotting them', async () => {
    const rows = Array.from({ length: 240 }, (_, i) => {
      const click = (i * 7) % 3 === 0 ? 1 : 0;
      return `${(i % 17) / 17},${click},${click && i % 2 ? 1 : 0},${click ? (i % 5) / 5 : ''},${1 + (i % 3)},u${i % 11}`;
    });
    fs.writeFileSync(path.join(work, 'esmm.csv'), ['x,click,buy,spend,w,user', ...rows].join('\n'));
    const config = path.join(work, 'esmm.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        model: { kind: 'mmoe', conditionalOn: { buy: 'click' } },
        data: {
          source: 'esmm.csv',
          schema: {
            dense: ['x'],
            tasks: [
              { name: 'click', type: 'binary', column: 'click', positive: '1' },
              { name: 'buy', type: 'binary', column: 'buy', positive: '1' },
              { name: 'spend', type: 'regression', column: 'spend' },
            ],
            sampleWeight: 'w',
            group: 'user',
          },
        },
        training: {
          epochs: 4,
          threads: 1,
          taskWeighting: 'dwa',
          losses: { spend: { where: { task: 'click', metrics: true } } },
          gradientConflict: { every: 3 },
          calibration: { method: 'platt' },
        },
      }),
    );
    const out = path.join(work, 'esmm');
    const result = await adatt(['train', config, '--out', out]);
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const epochs = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((line) => line.type === 'epoch');
    expect(epochs).toHaveLength(4);
    expect(epochs[0].taskWeights).toEqual({ click: 1, buy: 1, spend: 1 });
    const last = epochs[3].taskWeights;
    expect(last.click + last.buy + last.spend).toBeCloseTo(3, 6);
    expect(last.click).not.toBe(1);
    expect(epochs[0].gradientConflict.steps).toBeGreaterThan(0);
    expect(epochs[0].gradientConflict.cosine).toHaveProperty(['click/buy']);
    expect(epochs[0].validation.click.weight).toBeGreaterThan(epochs[0].validation.click.count);
    expect(epochs[0].validation.click.gaucGroups).toBeGreaterThan(0);
    const report = fs.readFileSync(path.join(out, 'report.html'), 'utf8');
    expect(report).toContain('task weights');
    expect(report).toContain('task-gradient cosine on shared parameters');
    expect(report).toContain('<th>gauc</th>');
    // Calibrated on validation: stored with the model, recorded with its curves, plotted, and applied unless --uncalibrated.
    const calibration = JSON.parse(fs.readFileSync(path.join(out, 'calibration.json'), 'utf8'));
    expect(Object.keys(calibration.calibration)).toEqual(['click', 'buy']);
    expect(calibration.calibration.click.method).toBe('platt');
    expect(result.stderr).toMatch(/calibrated click \(platt\) on validation: ECE [\d.]+ -> [\d.]+/);
    expect(report).toContain('click: reliability (ECE');
    const [calibrated, raw] = await Promise.all([
      adatt(['eval', out, '--split', 'validation', '--json']),
      adatt(['eval', out, '--split', 'validation', '--json', '--uncalibrated']),
    ]);
    const [withCalibration, without] = [events(calibrated.stdout)[0]!.metrics, events(raw.stdout)[0]!.metrics] as Record<
      string,
      Record<string, number>
    >[];
    expect(without!.click!.ece).toBeCloseTo(calibration.curves.click.before.ece, 6);
    expect(withCalibration!.click!.ece).toBeCloseTo(calibration.curves.click.after.ece, 6);
    expect(withCalibration!.spend).toEqual(without!.spend);
    // Platt scaling maximises the (weighted) likelihood on these rows, starting from the identity.
    expect(withCalibration!.click!.logLoss).toBeLessThanOrEqual(without!.click!.logLoss!);
    const reliability = await adatt(['eval', out, '--split', 'validation', '--reliability']);
    expect(reliability.stdout).toMatch(/\nclick: reliability \(ECE [\d.]+\)\npredicted\s+rows\s+mean prediction\s+positive rate\n/);
    expect(reliability.stdout).toMatch(/\n0\.000–0\.067\s+[\d,]+\s/);
    const reliabilityJson = events((await adatt(['eval', out, '--split', 'validation', '--reliability', '--json'])).stdout)[0]!;
    const curves = reliabilityJson.reliability as Record<string, { ece: number; bins: unknown[] }>;
    expect(Object.keys(curves)).toEqual(['click', 'buy']);
    expect(curves.click!.ece).toBeCloseTo(withCalibration!.click!.ece!, 9);
    expect(curves.click!.bins).toHaveLength(15);
    const inspect = await adatt(['inspect', out, '--no-gates']);
    expect(inspect.stdout).toMatch(/calibrated click: platt \(scale \S+, bias \S+\), buy: platt/);
    const scores = async (...flags: string[]): Promise<string[]> => {
      const file = path.join(work, `esmm-scores${flags.join('')}.csv`);
      expect((await adatt(['predict', out, '--data', path.join(work, 'esmm.csv'), '--output', file, ...flags])).code).toBe(0);
      return fs.readFileSync(file, 'utf8').trim().split('\n');
    };
    const [calibratedScores, rawScores] = [await scores(), await scores('--uncalibrated')];
    expect(calibratedScores[0]).toBe(rawScores[0]);
    expect(calibratedScores.length).toBe(rawScores.length);
    expect(calibratedScores.slice(1)).not.toEqual(rawScores.slice(1));
    const bad = path.join(work, 'esmm-bad.json');
    fs.writeFileSync(
      bad,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(config, 'utf8')), model: { kind: 'mmoe', conditionalOn: { buy: 'spend' } } }),
    );
    const refused = await adatt(['train', bad, '--out', path.join(work, 'esmm-bad')]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/conditionalOn names 'spend', a regression task/);
  });
});

describe('adatt train with data.stream', () => {
  it('trains from shards it streams, with validation and test files of their own, and evaluates, predicts and inspects them', async () => {
    const dir = path.join(work, 'streamed');
    fs.mkdirSync(dir);
    // Rows whose label follows x and c, so that training learns something measurable.
    const rows = (count: number, seed: number): string[] =>
      Array.from({ length: count }, (_, i) => {
        const x = ((i * 37 + seed * 11) % 101) / 50 - 1;
        const c = ['a', 'b', 'c', 'd'][(i + seed) % 4]!;
        return `${x.toFixed(3)},${c},${x + (c === 'a' ? 0.8 : 0) > 0.2 ? 1 : 0}`;
      });
    const write = (name: string, lines: string[]): void => fs.writeFileSync(path.join(dir, name), ['x,c,y', ...lines].join('\n'));
    write('train-1.csv', rows(300, 1));
    write('train-2.csv', rows(250, 2));
    write('valid.csv', rows(120, 3));
    write('test.csv', rows(90, 4));
    const config = path.join(dir, 'run.json');
    fs.writeFileSync(
      config,
      JSON.stringify({
        data: {
          source: 'train-*.csv',
          schema: { dense: ['x'], categorical: ['c'], tasks: [{ name: 'y', type: 'binary', column: 'y', positive: '1' }] },
          stream: { validation: 'valid.csv', test: 'test.csv', chunkRows: 128, seed: 3 },
        },
        training: { epochs: 2, threads: 1 },
      }),
    );
    const out = path.join(dir, 'run');
    const result = await adatt(['train', config, '--out', out, '--json']);
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    const trained = events(result.stdout);
    expect(trained.find((event) => event.event === 'data')).toMatchObject({ rows: { train: 550, validation: 120, test: 90 } });
    const test = trained.find((event) => event.event === 'test')!.metrics as Record<string, Record<string, number>>;
    expect(test.y!.count).toBe(90);
    expect(test.y!.auc).toBeGreaterThan(0.7);
    expect(readJson(path.join(out, 'gates.json')).rows).toBe(120);

    // eval streams the test file again: the same metrics as at the end of training.
    const evaluated = events((await adatt(['eval', out, '--json'])).stdout)[0]!;
    expect(evaluated).toMatchObject({ event: 'metrics', rows: 90, data: 'train-*.csv test split', metrics: test });
    const validation = events((await adatt(['eval', out, '--split', 'validation', '--json'])).stdout)[0]!;
    expect(validation).toMatchObject({ rows: 120 });
    // predict reads the split's own file into memory, one prediction per row.
    const predictions = path.join(dir, 'test-predictions.csv');
    const predicted = await adatt(['predict', out, '--output', predictions, '--keep', 'x']);
    expect(predicted.code).toBe(0);
    expect(fs.readFileSync(predictions, 'utf8').trim().split('\n')).toHaveLength(91);
    const inspected = await adatt(['inspect', out]);
    expect(inspected.code).toBe(0);
    expect(inspected.stdout).toContain('train-*.csv validation split');
    // Another file of a streamed run is read whole: a split of it would not be the run's.
    const otherSplit = await adatt(['eval', out, '--data', path.join(dir, 'valid.csv'), '--split', 'validation']);
    expect(otherSplit.code).toBe(2);
    expect(otherSplit.stderr).toContain('--split validation: the splits of a streamed run are sources of their own');
    const whole = events((await adatt(['eval', out, '--data', path.join(dir, 'valid.csv'), '--json'])).stdout)[0]!;
    expect(whole).toMatchObject({ rows: 120, data: 'valid.csv' });
    const inspectedOther = await adatt(['inspect', out, '--data', path.join(dir, 'valid.csv')]);
    expect(inspectedOther.stderr).toBe('');
    expect(inspectedOther.stdout).toContain('valid.csv');

    // A streamed run has no random split, and its options are checked before any data is read.
    const bad = async (data: Record<string, unknown>): Promise<string> => {
      const file = path.join(dir, 'bad.json');
      fs.writeFileSync(
        file,
        JSON.stringify({
          data: {
            source: 'train-*.csv',
            schema: { dense: ['x'], tasks: [{ name: 'y', type: 'binary', column: 'y', positive: '1' }] },
            ...data,
          },
        }),
      );
      const failed = await adatt(['train', file, '--out', path.join(dir, 'never')]);
      expect(failed.code).toBe(2);
      expect(fs.existsSync(path.join(dir, 'never'))).toBe(false);
      return failed.stderr;
    };
    expect(await bad({ stream: true, split: { train: 0.9, validation: 0.1 } })).toContain(
      'data.split splits rows held in memory at random',
    );
    expect(await bad({ stream: { chunkRows: 0 } })).toMatch(/data\.stream\.chunkRows must be an integer/);
    expect(await bad({ stream: { test: 'nope.csv' } })).toContain('data.stream.test: no such file');
    fs.writeFileSync(path.join(dir, 'rows.arrow'), '');
    expect(await bad({ stream: { validation: 'rows.arrow' } })).toContain(
      'data.stream.validation: a stream reads Parquet, CSV and JSON lines',
    );
    // stream: false is no stream, and takes readCsv's options.
    const inMemory = path.join(dir, 'in-memory.json');
    fs.writeFileSync(
      inMemory,
      JSON.stringify({
        data: {
          source: 'valid.csv',
          schema: { dense: ['x'], tasks: [{ name: 'y', type: 'binary', column: 'y', positive: '1' }] },
          stream: false,
          csv: { trim: true },
        },
        training: { epochs: 1, threads: 1 },
      }),
    );
    expect((await adatt(['train', inMemory, '--out', path.join(dir, 'in-memory')])).code).toBe(0);
    expect(await bad({ stream: {}, csv: { trim: true } })).toContain(
      "unknown key data.csv.trim (allowed in data.csv: 'delimiter', 'quote', 'header')",
    );
  }, 120_000);
});

describe('adatt eval, predict, inspect, report, export', () => {
  it("evaluates the run's test split by default, as a table or JSON", async () => {
    const table = await adatt(['eval', run]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^task\s+rmse\s+mae\s+count\n/);
    expect(table.stdout).toMatch(/\ny1\s+\d\.\d{4}\s+\d\.\d{4}\s+200\n/);
    const json = await adatt(['eval', path.join(run, 'model.adatt'), '--split', 'validation', '--json']);
    const [event] = events(json.stdout);
    expect(event).toMatchObject({ event: 'metrics', rows: 200, data: 'synthetic validation split' });
    const test = (await adatt(['eval', run, '--json'])).stdout;
    const lines = fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(events(test)[0]!.metrics).toEqual(JSON.parse(lines.at(-1)!).metrics);
  });

  it('writes predictions as CSV and Parquet', async () => {
    const csv = path.join(work, 'scores.csv');
    expect((await adatt(['predict', run, '--output', csv])).code).toBe(0);
    const lines = fs.readFileSync(csv, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('y1,y2');
    expect(lines).toHaveLength(201);
    const parquet = path.join(work, 'scores.parquet');
    expect((await adatt(['predict', run, '--split', 'validation', '--output', parquet])).code).toBe(0);
    const table = await readParquet(parquet);
    expect(table.columnNames).toEqual(['y1', 'y2']);
    expect(table.size).toBe(200);
    const stdout = await adatt(['predict', run]);
    expect(stdout.stdout.split('\n')[0]).toBe('y1,y2');
    const bad = await adatt(['predict', run, '--output', path.join(work, 'scores.xlsx')]);
    expect(bad.code).toBe(2);
  });

  it('inspects the architecture, the parameters per part and the gates', async () => {
    const text = await adatt(['inspect', run, '--sample', '100']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/kind\s+adatt-sp/);
    expect(text.stdout).toMatch(/levels\s+0: 4 × MLP \[16\]\s+1: 4 × MLP \[8\]/);
    expect(text.stdout).toContain('experts, level 0');
    expect(text.stdout).toContain('Gate weights: mean over 100 rows of synthetic validation split');
    expect(text.stdout).toContain('Expert health: over 100 rows of synthetic validation split');
    expect(text.stdout).toMatch(/\n\s+1\s+y2\/1\s+\d+\.\d%\s+\d+\.\d%\s+\d/);
    const json = events((await adatt(['inspect', run, '--json', '--no-gates'])).stdout)[0]!;
    const parts = json.parts as { parameters: number }[];
    expect(parts.reduce((sum, part) => sum + part.parameters, 0)).toBe(json.parameters);
    expect(json.gates).toBeUndefined();
    expect(json.expertHealth).toBeUndefined();
    // The same rows as the last epoch's measurement in metrics.jsonl (the model's final weights, 2048 rows by default).
    const withHealth = events((await adatt(['inspect', run, '--json'])).stdout)[0]!;
    const epochs = fs
      .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
      .filter((line) => line.type === 'epoch');
    expect(epochs.every((epoch) => epoch.expertHealth.experts.length === 8)).toBe(true);
    expect(withHealth.expertHealth).toEqual(epochs.at(-1).expertHealth);
  });

  it('rebuilds the report from the run files alone', async () => {
    const before = fs.readFileSync(path.join(run, 'report.html'), 'utf8');
    const other = path.join(work, 'rebuilt.html');
    const result = await adatt(['report', run, '--output', other]);
    expect(result.code).toBe(0);
    expect(fs.readFileSync(other, 'utf8')).toBe(before);
  });

  it('exports weights with their config, and refuses TorchScript with an explanation', async () => {
    const weights = path.join(work, 'weights.safetensors');
    const result = await adatt(['export', run, '--output', weights]);
    expect(result.code).toBe(0);
    expect(fs.statSync(weights).size).toBeGreaterThan(1000);
    expect(readJson(path.join(work, 'weights.config.json'))).toMatchObject({ kind: 'adatt-sp', denseDim: 8 });
    const scripted = await adatt(['export', run, '--output', path.join(work, 'model.pt'), '--format', 'torchscript']);
    expect(scripted.code).toBe(2);
    expect(scripted.stderr).toContain("TorchScript export of adatt's native models is not possible");
    expect(fs.existsSync(path.join(work, 'model.pt'))).toBe(false);
  });

  it('needs data for a checkpoint outside a run directory', async () => {
    const loose = path.join(work, 'loose.adatt');
    fs.copyFileSync(path.join(run, 'model.adatt'), loose);
    const result = await adatt(['eval', loose]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--data is needed');
  });
});

describe('adatt', () => {
  it('has help everywhere, a version and a did-you-mean for commands', async () => {
    const help = await adatt(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['train', 'eval', 'predict', 'inspect', 'report', 'export', 'datasets', 'bench']) {
      expect(help.stdout).toContain(`  ${command} `);
      const own = await adatt([command, '--help']);
      expect(own.code).toBe(0);
      expect(own.stdout).toContain(`Usage: adatt ${command}`);
      expect(own.stdout).toContain('Examples:');
    }
    const version = await adatt(['--version']);
    expect(version.stdout.trim()).toBe(
      (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version,
    );
    const typo = await adatt(['trian']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain("unknown command 'trian' (did you mean 'train'?)");
  }, 60_000);
});
