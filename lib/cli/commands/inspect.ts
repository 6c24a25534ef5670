/** `adatt inspect`: a model's architecture, parameter counts per part and gate statistics on data. */
import type { Calibration, TaskCalibrator } from '../../calibration';
import { TensorDataset } from '../../dataset';
import type { ExpertHealth } from '../../expert-health';
import { normalizeModelConfig } from '../../config';
import type { Model } from '../../model';
import { positionalsOf, type ParsedArgs } from '../args';
import { applyThreads, DATA_OPTIONS, DEVICE_OPTION, deviceOf, JSON_OPTION, selectData, THREADS_OPTION, type Command } from '../command';
import { loadEvaluationData } from '../data';
import { UsageError } from '../exit';
import { formatInteger, formatTable } from '../format';
import { evenlySpacedRows, gateShares } from '../../gates';
import { batchOfRows, measureGates, rowsInMemory } from '../gates';
import { openModel, type OpenedModel } from '../model-source';
import type { Output } from '../output';
import { groupParameters, type ParameterGroup } from '../parameters';
import type { GateRecord } from '../run-dir';
import { schemaOf } from './eval';

export const inspectCommand: Command = {
  spec: {
    name: 'inspect',
    summary: "show a model's architecture, parameters per part, expert utilisation and expert health on data",
    description: `Gate statistics are each gate's softmax weight on each expert, averaged over --sample rows of the
validation split of the run's data (or --data / --split), and how it divides between the task's own experts,
other tasks' experts and shared experts. Expert health, on the same rows: per expert the share of zero ReLU outputs,
of dead units and its output norm, with flags for collapsed, degraded and ignored experts.`,
    positionals: [{ name: 'model', description: 'run directory or .adatt checkpoint', required: true }],
    options: [
      ...DATA_OPTIONS,
      { name: 'sample', type: 'integer', value: 'N', description: 'rows for the gate statistics and expert health (default 2048)' },
      { name: 'gates', type: 'boolean', description: 'gate statistics and expert health (default on; --no-gates skips reading data)' },
      DEVICE_OPTION,
      THREADS_OPTION,
      JSON_OPTION,
    ],
    examples: [
      'adatt inspect runs/census',
      'adatt inspect runs/census --split test --sample 10000',
      'adatt inspect model.adatt --no-gates --json',
    ],
  },
  run: inspectModel,
};

function architectureLines(opened: OpenedModel, model: Model): [string, string][] {
  const config = model.config;
  const native = normalizeModelConfig(config);
  const embeddings = [...native.categorical, ...native.multiValued];
  const inputWidth = native.denseDim + embeddings.reduce((sum, f) => sum + f.dim, 0);
  const widths = embeddings.map((f) => f.dim);
  const embeddingText = widths.length ? ` (embedding widths ${Math.min(...widths)}–${Math.max(...widths)})` : '';
  const expertCount = ((): number | undefined => {
    switch (native.kind) {
      case 'adatt-sp':
      case 'adatt':
      case 'ple':
        return native.expertsPerTask.reduce((a, b) => a + b, 0) + native.sharedExperts;
      case 'mmoe':
        return native.sharedExperts;
      case 'cross-stitch':
        return native.tasks.length;
      default:
        return undefined;
    }
  })();
  const levels = native.expertDims
    .map((dims, level) => `${level}: ${expertCount === undefined ? '' : `${expertCount} × `}MLP [${dims.join(', ')}]`)
    .join('   ');
  const training = opened.checkpoint.training;
  return [
    ['file', `${opened.file} (adatt ${opened.checkpoint.libraryVersion})`],
    ['kind', config.kind],
    [
      'input',
      `${native.denseDim} dense, ${native.categorical.length} categorical, ${native.multiValued.length} multi-valued${embeddingText} → width ${inputWidth}`,
    ],
    ['tasks', config.tasks.map((t) => `${t.name} (${t.type}${t.type === 'multiclass' ? `, ${t.classes} classes` : ''})`).join(', ')],
    [native.kind === 'shared-bottom' || native.kind === 'single-task' ? 'bottom' : 'levels', levels],
    ['towers', `[${native.towerDims.join(', ')}] → output per task`],
    ['parameters', formatInteger(model.parameterCount())],
    ['device', model.device],
    ...(model.calibration ? [['calibrated', calibrationText(model.calibration)] as [string, string]] : []),
    ...(training
      ? [['training', `next epoch ${training.nextEpoch + 1}, step ${training.step}, ${training.optimizerType}`] as [string, string]]
      : []),
  ];
}

/** Per calibrated task, its method and parameters, e.g. 'click: platt (scale 0.812, bias -0.104)'. */
function calibrationText(calibration: Calibration): string {
  return Object.entries(calibration)
    .map(([task, c]) => `${task}: ${calibratorText(c)}`)
    .join(', ');
}

function calibratorText(c: TaskCalibrator): string {
  switch (c.method) {
    case 'temperature':
      return `temperature ${c.temperature.toPrecision(4)}`;
    case 'platt':
      return `platt (scale ${c.scale.toPrecision(4)}, bias ${c.bias.toPrecision(4)})`;
    case 'isotonic':
      return `isotonic (${c.logits.length} knots)`;
  }
}

function parametersTable(groups: readonly ParameterGroup[], total: number): string {
  const rows = groups.map((g) => [g.part, String(g.tensors), formatInteger(g.parameters), `${((g.parameters / total) * 100).toFixed(1)}%`]);
  rows.push(['total', String(groups.reduce((s, g) => s + g.tensors, 0)), formatInteger(total), '100.0%']);
  return formatTable(['part', 'tensors', 'parameters', 'share'], rows);
}

function gatesText(gates: GateRecord): string {
  const blocks = gates.levels.map((level) => {
    const weights = formatTable(
      ['gate \\ expert', ...level.experts],
      level.gates.map((gate, g) => [gate, ...level.weights[g]!.map((w) => w.toFixed(3))]),
    );
    const shares = gateShares(level).filter((s) => s.own !== undefined);
    const pct = (v: number | undefined): string => (v === undefined ? '–' : `${(v * 100).toFixed(1)}%`);
    const hasShared = shares.some((s) => s.shared !== undefined);
    const sharesText =
      shares.length === 0
        ? ''
        : `\n\n${formatTable(
            ['gate', 'own experts', 'other tasks', ...(hasShared ? ['shared'] : []), 'entropy'],
            shares.map((s) => [s.gate, pct(s.own), pct(s.otherTasks), ...(hasShared ? [pct(s.shared)] : []), s.entropy.toFixed(3)]),
          )}`;
    return `Level ${level.level}\n${weights}${sharesText}`;
  });
  return `Gate weights: mean over ${formatInteger(gates.rows)} rows of ${gates.split}\n\n${blocks.join('\n\n')}`;
}

/** Per level and expert its health, then the flags (docs/training.md, "Expert health"). */
export function expertHealthText(health: ExpertHealth, split: string): string {
  const pct = (v: number): string => `${(v * 100).toFixed(1)}%`;
  const table = formatTable(
    ['level', 'expert', 'zero outputs', 'dead units', 'output norm'],
    health.experts.map((e) => [String(e.level), e.expert, pct(e.zeroFraction), pct(e.deadUnits), e.outputNorm.toPrecision(4)]),
  );
  const flags =
    health.flags.length === 0
      ? 'No flags: no collapsed expert, no shared expert serving one task, no task gate ignoring its own experts.'
      : `Flags:\n${health.flags.map((flag) => `  ${flag.kind}: ${flag.message}`).join('\n')}`;
  return `Expert health: over ${formatInteger(health.rows)} rows of ${split}\n\n${table}\n\n${flags}`;
}

/** Gate statistics and expert health on sampled rows of the validation split (or --data / --split). */
async function rowStatistics(
  args: ParsedArgs,
  opened: OpenedModel,
  model: Model,
  out: Output,
): Promise<{ gates?: GateRecord; health?: ExpertHealth; split?: string }> {
  if (args.options.gates === false) return {};
  if (opened.run === undefined && args.options.data === undefined) {
    out.info('(gate statistics and expert health need rows: pass --data, or inspect a run directory)');
    return {};
  }
  const { data, split } = await selectData(args.options, opened, 'validation');
  const sample = (args.options.sample as number | undefined) ?? 2048;
  if (sample < 1) throw new UsageError(`--sample must be at least 1, got ${sample}`);
  const rows = await loadEvaluationData(data, schemaOf(opened), split, {
    labels: 'optional',
    // A stream needs every column of the schema; rows given with --data may lack the labels.
    streamed: args.options.data === undefined,
  });
  const encoded = await rowsInMemory(rows.rows);
  const gates = await measureGates(model, encoded, sample, rows.description);
  if (!gates) out.info(`(a ${model.config.kind} model has no softmax gates over experts)`);
  // Only the sampled rows (the gates' rows) become a native dataset.
  const sampled = batchOfRows(encoded, evenlySpacedRows(encoded.size, sample));
  using dataset = TensorDataset.fromEncoded({ ...sampled, labels: encoded.labels.map(() => new Float32Array(sampled.size)) });
  const health = await model.expertStats(dataset, { rows: sample });
  return { ...(gates ? { gates } : {}), health, split: rows.description };
}

async function inspectModel(args: ParsedArgs, out: Output): Promise<number> {
  const { model: modelPath } = positionalsOf(inspectCommand.spec, args) as { model: string };
  applyThreads(args.options);
  const opened = await openModel(modelPath, deviceOf(args.options));
  using model = opened.checkpoint.model;
  const parts = groupParameters(
    await model.stateDict(),
    model.config.tasks.map((task) => task.name),
  );
  const total = model.parameterCount();
  const lines = architectureLines(opened, model);
  if (!out.json) {
    out.print(lines.map(([key, value]) => `${key.padEnd(11)}${value}`).join('\n'));
    out.print(`\n${parametersTable(parts, total)}`);
  }
  const { gates, health, split } = await rowStatistics(args, opened, model, out);
  if (gates && !out.json) out.print(`\n${gatesText(gates)}`);
  if (health && !out.json) out.print(`\n${expertHealthText(health, split!)}`);
  out.event('inspect', {
    file: opened.file,
    config: model.config,
    parameters: total,
    parts,
    ...(model.calibration ? { calibration: model.calibration } : {}),
    ...(gates ? { gates: { ...gates, shares: gates.levels.map(gateShares) } } : {}),
    ...(health ? { expertHealth: health } : {}),
  });
  return 0;
}
