/** Run configs: defaults, files, flags and --set, and errors that name the field and the allowed values. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors';
import { describeError, FlaggedConfigError, UsageError } from '../../lib/cli/exit';
import { loadTrainingData, rowsOf } from '../../lib/cli/data';
import type { EncodedData } from '../../lib/data/types';
import { buildRunConfig, parseSetOption, readConfigFile, type Override } from '../../lib/cli/run-config';

function configError(file: Record<string, unknown> | undefined, overrides: Override[] = []): ConfigError {
  try {
    buildRunConfig(file, overrides);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'adatt-cli-config-'));

describe('buildRunConfig', () => {
  it('fills the defaults and the kind-specific settings the kind needs', () => {
    const config = buildRunConfig(undefined, [{ field: 'model.kind', value: 'mmoe', flag: '--model' }]);
    expect(config.model).toMatchObject({ kind: 'mmoe', experts: 4, expertDims: [[64], [32]], towerDims: [16] });
    expect(config.data).toEqual({ source: 'synthetic' });
    expect(config.training.epochs).toBe(5);
    expect(config.training.threads).toBeGreaterThanOrEqual(1);
    expect(config.report.gateSampleRows).toBe(2048);
  });

  it('lets flags override the file, field by field', () => {
    const config = buildRunConfig(
      { model: { kind: 'ple', expertsPerTask: 2, sharedExperts: 2 }, training: { epochs: 9, optimizer: { type: 'adamw', lr: 0.1 } } },
      [{ field: 'training.optimizer.lr', value: 0.002, flag: '--lr' }],
    );
    expect(config.model).toMatchObject({ kind: 'ple', expertsPerTask: 2, sharedExperts: 2 });
    expect(config.training).toMatchObject({ epochs: 9, optimizer: { type: 'adamw', lr: 0.002 } });
  });

  it('names the field, the allowed values and the flag that set a bad value', () => {
    const kind = configError(undefined, [{ field: 'model.kind', value: 'moe', flag: '--model' }]);
    expect(kind.field).toBe('model.kind');
    expect(kind.message).toContain(
      "model.kind must be one of 'adatt-sp', 'adatt', 'mmoe', 'ple', 'cross-stitch', 'shared-bottom', 'single-task', got \"moe\"",
    );
    expect(kind).toBeInstanceOf(FlaggedConfigError);
    expect(describeError(kind)).toMatch(/^Invalid run config: model\.kind must be .* got "moe" \(set by --model\)$/);

    const section = configError({ trainig: {} });
    expect(section.field).toBe('trainig');
    expect(section.message).toContain("unknown key trainig (allowed in run config: 'model', 'data', 'training', 'report')");

    const key = configError({ training: { epoch: 3 } });
    expect(key.field).toBe('training.epoch');
    expect(key.message).toContain("'epochs'");

    const epochs = configError(undefined, [{ field: 'training.epochs', value: 0, flag: '--epochs' }]);
    expect(epochs.field).toBe('training.epochs');
    expect(describeError(epochs)).toMatch(/training\.epochs must be an integer.*got 0 \(set by --epochs\)/);
  });

  it('checks the model section with the library validator before any data is read', () => {
    const experts = configError({ model: { kind: 'adatt-sp', expertsPerTask: 0 } });
    expect(experts.field).toBe('model.expertsPerTask');
    expect(experts.message).toContain('expertsPerTask must be an integer in [1, 1024], got 0');

    const wrongKey = configError({ model: { kind: 'mmoe', expertsPerTask: 2 } });
    expect(wrongKey.field).toBe('model.expertsPerTask');
    expect(wrongKey.message).toContain("'experts'");

    const derived = configError({ model: { kind: 'adatt-sp', tasks: [] } });
    expect(derived.field).toBe('model.tasks');
    expect(derived.message).toContain("comes from the data's schema");
  });

  it('checks the data section: built-in names, files, schemas', () => {
    const source = configError({ data: { source: 'census' } });
    expect(source.field).toBe('data.source');
    expect(source.message).toContain("'census-income', 'adult', 'synthetic', a .csv");

    const tasks = configError({ data: { source: 'adult', tasks: 'all' } });
    expect(tasks.field).toBe('data.tasks');

    const csv = path.join(tempDir, 'rows.csv');
    fs.writeFileSync(csv, 'a,b\n1,0\n');
    expect(configError({ data: { source: csv } }).field).toBe('data.schema');
    const badSpec = configError({ data: { source: csv, schema: { dense: ['a'], tasks: [{ name: 'y', type: 'binar', column: 'b' }] } } });
    expect(badSpec.field).toBe('data.schema.tasks[0].type');
    expect(configError({ data: { source: path.join(tempDir, 'missing.csv') } }).message).toContain('no such file');
  });

  it('takes globs of shards and SQL sources, which load like files', async () => {
    const schema = { dense: ['a'], tasks: [{ name: 'y', type: 'binary', column: 'b', positive: '1' }] };
    for (const part of [1, 2]) fs.writeFileSync(path.join(tempDir, `part-${part}.csv`), `a,b\n${part},1\n${part + 2},0\n`);
    const shards = buildRunConfig({ data: { source: path.join(tempDir, 'part-*.csv'), schema, split: { train: 1 } } }, []);
    expect(rowsOf((await loadTrainingData(shards.data)).train)).toBe(4);

    const sql = `SELECT a, b::VARCHAR AS b FROM read_csv('${path.join(tempDir, 'part-*.csv')}') WHERE a > 1`;
    const query = buildRunConfig({ data: { source: { sql }, schema, split: { train: 1 } } }, []);
    const loaded = await loadTrainingData(query.data);
    const train = loaded.train as EncodedData;
    expect([loaded.name, train.size, Array.from(train.labels[0] ?? [])]).toEqual(['sql', 3, [0, 1, 0]]);

    expect(configError({ data: { source: { sql }, schema, csv: {} } }).field).toBe('data.csv');
    expect(configError({ data: { source: { query: sql }, schema } }).field).toBe('data.source.query');
    const bad = await loadTrainingData(buildRunConfig({ data: { source: { sql: 'SELEC 1' }, schema } }, []).data).catch(
      (err: unknown) => err,
    );
    expect(bad).toMatchObject({ field: 'data.source.sql', message: expect.stringMatching(/^Invalid SQL source: Parser Error/) });
  });
});

describe('config files and --set', () => {
  it('reads YAML and JSON, resolving data paths against the file', async () => {
    const yaml = path.join(tempDir, 'run.yaml');
    fs.writeFileSync(yaml, 'model:\n  kind: adatt\n  expertsPerTask: [1, 2]\ndata:\n  source: rows.csv\ntraining:\n  epochs: 2\n');
    const parsed = await readConfigFile(yaml);
    expect(parsed).toEqual({
      model: { kind: 'adatt', expertsPerTask: [1, 2] },
      data: { source: path.join(tempDir, 'rows.csv') },
      training: { epochs: 2 },
    });
    const json = path.join(tempDir, 'run.json');
    fs.writeFileSync(json, JSON.stringify({ data: { source: 'adult' } }));
    expect(await readConfigFile(json)).toEqual({ data: { source: 'adult' } });
  });

  it('reports unreadable files as usage errors and bad syntax as config errors with the position', async () => {
    await expect(readConfigFile(path.join(tempDir, 'nope.yaml'))).rejects.toThrow(UsageError);
    const broken = path.join(tempDir, 'broken.yaml');
    fs.writeFileSync(broken, 'model:\n  kind: [adatt\n');
    await expect(readConfigFile(broken)).rejects.toThrow(/cannot parse .*broken\.yaml.*line/s);
    const scalar = path.join(tempDir, 'scalar.json');
    fs.writeFileSync(scalar, '3');
    await expect(readConfigFile(scalar)).rejects.toThrow(ConfigError);
  });

  it('parses --set values as YAML', async () => {
    expect(await parseSetOption('model.expertDims=[[32],[16]]')).toEqual({
      field: 'model.expertDims',
      value: [[32], [16]],
      flag: '--set model.expertDims',
    });
    expect((await parseSetOption('training.optimizer.lr=2e-3')).value).toBe(0.002);
    expect((await parseSetOption('training.schedule.type=cosine')).value).toBe('cosine');
    await expect(parseSetOption('epochs=3')).rejects.toThrow(/SECTION\.KEY=VALUE/);
  });
});
