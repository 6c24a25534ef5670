/**
 * Expert health: whether a mixture of experts works as intended (Kuaishou's HoME, 2024, names the
 * failures). Per level and expert, the share of its ReLU outputs that are zero, the share of its
 * output units that are never active, and its output scale; per task gate, its shares of weight on
 * its own, other tasks' and shared experts; and flags for collapse (a mostly dead expert),
 * degradation (a shared expert that serves one task) and underfitting (a task gate that ignores its
 * own experts). The sums over rows are native (adatt::expert_activity); the judgement is here.
 */
import type { RawExpertActivity, RawModel } from './addon';
import { normalizeModelConfig, type ModelConfig } from './config';
import { TensorDataset } from './dataset';
import { callNativeAsync } from './errors';
import { evenlySpacedRows, gateLabels, gateShares } from './gates';
import { describeValue, optionError, readNumber, readOptions } from './validation';

export interface ExpertHealthOptions {
  /** Rows to measure, evenly spaced over the data (default 4096; all rows when it has fewer). */
  rows?: number;
  /** Default 4096. */
  batchSize?: number;
  /** Collapse: an expert whose outputs are zero on more than this share of rows x units (default 0.9). */
  collapseThreshold?: number;
  /** Degradation: a shared expert that gets more than this share of the task gates' weight on it from one task (default 0.9). */
  degradationThreshold?: number;
  /** Underfitting: a task gate whose weight on its own experts is below this fraction of a uniform gate's (default 0.25). */
  underfittingThreshold?: number;
}

export interface ExpertStats {
  level: number;
  /** '<task>/<i>', 'shared/<i>', 'expert <i>' (mmoe), the task's network (cross-stitch, single-task) or 'bottom'. */
  expert: string;
  /** Share of the expert's outputs (rows x units) that are exactly 0 after its last ReLU. */
  zeroFraction: number;
  /** Share of its output units that are 0 on every measured row (dead units). */
  deadUnits: number;
  /** Mean L2 norm of its output vector. */
  outputNorm: number;
  /** Per gate, its mean softmax weight on this expert (kinds with gates). */
  gateWeights?: Record<string, number>;
}

export interface TaskGateShares {
  level: number;
  task: string;
  /** Shares of the gate's weight: on the task's own experts, other tasks' experts and shared experts. */
  own: number;
  otherTasks: number;
  shared?: number;
  /** The own share of a uniform gate over the experts this gate reads. */
  uniformOwn: number;
}

export type ExpertHealthFlag =
  | { kind: 'collapse'; level: number; expert: string; zeroFraction: number; message: string }
  | { kind: 'degradation'; level: number; expert: string; task: string; share: number; message: string }
  | { kind: 'underfitting'; level: number; task: string; own: number; uniformOwn: number; message: string };

export interface ExpertHealth {
  /** Rows measured. */
  rows: number;
  experts: ExpertStats[];
  /** Task gates whose level has task-owned experts (adatt-sp, adatt, ple). */
  gates: TaskGateShares[];
  flags: ExpertHealthFlag[];
}

const OPTION_KEYS = ['rows', 'batchSize', 'collapseThreshold', 'degradationThreshold', 'underfittingThreshold'] as const;
const SHARED = 'shared';

/** What expert statistics read off a native model (Model.expertStats passes itself). */
interface MeasuredModel {
  readonly config: ModelConfig;
  _raw(): RawModel;
}

/** Checks expert-health options (also fit's `expertHealth`), filling defaults. */
export function readExpertHealthOptions(value: unknown, field = 'options'): Required<ExpertHealthOptions> {
  const spec = readOptions(value, field, OPTION_KEYS);
  const count = { min: 1, integer: true };
  const share = { min: 0, max: 1 };
  return {
    rows: readNumber(spec.rows, `${field}.rows`, 4096, count),
    batchSize: readNumber(spec.batchSize, `${field}.batchSize`, 4096, count),
    collapseThreshold: readNumber(spec.collapseThreshold, `${field}.collapseThreshold`, 0.9, share),
    degradationThreshold: readNumber(spec.degradationThreshold, `${field}.degradationThreshold`, 0.9, share),
    underfittingThreshold: readNumber(spec.underfittingThreshold, `${field}.underfittingThreshold`, 0.25, share),
  };
}

/** Per level, the names of the experts whose outputs the addon reports, in its order. */
function expertNames(model: MeasuredModel, levels: number): string[][] {
  const native = normalizeModelConfig(model.config);
  const tasks = native.tasks.map((task) => task.name);
  const gated = gateLabels(native);
  if (gated.length > 0) return gated.map((level) => level.experts);
  if (native.kind === 'shared-bottom') return [['bottom']];
  return Array.from({ length: levels }, () => tasks);
}

/** Measures `model` on `data` (see docs/training.md, "Expert health"). */
export async function measureExpertHealth(model: MeasuredModel, data: TensorDataset, options?: ExpertHealthOptions): Promise<ExpertHealth> {
  if (!(data instanceof TensorDataset)) optionError('data', `expert statistics need a TensorDataset, got ${describeValue(data)}`);
  const settings = readExpertHealthOptions(options);
  const raw = model._raw();
  const rows = evenlySpacedRows(data.size, settings.rows);
  const dataset = data._raw();
  const activity = await callNativeAsync(() => raw.expertActivity(dataset, rows, settings.batchSize));
  return judge(model, activity, settings);
}

function judge(model: MeasuredModel, activity: RawExpertActivity, settings: Required<ExpertHealthOptions>): ExpertHealth {
  const names = expertNames(model, activity.levels.length);
  const taskNames = new Set(model.config.tasks.map((task) => task.name));
  const gated = gateLabels(normalizeModelConfig(model.config));
  const experts: ExpertStats[] = [];
  const gates: TaskGateShares[] = [];
  const flags: ExpertHealthFlag[] = [];
  const n = activity.rows;
  activity.levels.forEach((level, l) => {
    const labels = names[l]!;
    const [count, units] = level.activeRows.shape as [number, number];
    const gateLevel = gated[l];
    const meanWeights =
      gateLevel && level.gateSum
        ? gateLevel.gates.map((_, g) => Array.from(level.gateSum!.data.subarray(g * count, (g + 1) * count), (w) => w / n))
        : undefined;
    for (let e = 0; e < count; e++) {
      const active = level.activeRows.data.subarray(e * units, (e + 1) * units);
      const stats: ExpertStats = {
        level: l,
        expert: labels[e]!,
        zeroFraction: level.zeroCount.data[e]! / (n * units),
        deadUnits: active.reduce((dead, rowsActive) => (rowsActive === 0 ? dead + 1 : dead), 0) / units,
        outputNorm: level.normSum.data[e]! / n,
        ...(meanWeights ? { gateWeights: Object.fromEntries(gateLevel!.gates.map((gate, g) => [gate, meanWeights[g]![e]!])) } : {}),
      };
      experts.push(stats);
      if (stats.zeroFraction > settings.collapseThreshold) {
        flags.push({
          kind: 'collapse',
          level: l,
          expert: stats.expert,
          zeroFraction: stats.zeroFraction,
          message: `level ${l} expert ${stats.expert} has collapsed: ${percent(stats.zeroFraction)} of its outputs are zero`,
        });
      }
    }
    if (!gateLevel || !meanWeights) return;
    const taskGates = gateLevel.gates.map((gate, g) => ({ gate, g })).filter(({ gate }) => taskNames.has(gate));
    // Degradation: experts that every task gate may use (shared ones; all of MMoE's) serving one task.
    const sharedExperts = gateLevel.experts
      .map((expert, e) => ({ expert, e }))
      .filter(({ expert }) => expert.startsWith(`${SHARED}/`) || !expert.includes('/'));
    if (taskGates.length >= 2) {
      for (const { expert, e } of sharedExperts) {
        const uses = taskGates.map(({ gate, g }) => ({ gate, weight: meanWeights[g]![e]! }));
        const total = uses.reduce((sum, use) => sum + use.weight, 0);
        const top = uses.reduce((best, use) => (use.weight > best.weight ? use : best));
        const share = total > 0 ? top.weight / total : 0;
        if (share > settings.degradationThreshold) {
          flags.push({
            kind: 'degradation',
            level: l,
            expert,
            task: top.gate,
            share,
            message: `level ${l} shared expert ${expert} serves ${top.gate} only: ${percent(share)} of the task gates' weight on it`,
          });
        }
      }
    }
    const shares = gateShares({ gates: gateLevel.gates, experts: gateLevel.experts, weights: meanWeights });
    for (const { gate, g } of taskGates) {
      const share = shares[g]!;
      if (share.own === undefined) continue;
      const seen = meanWeights[g]!.map((w, e) => ({ w, e })).filter(({ w }) => w > 0);
      const ownCount = seen.filter(({ e }) => gateLevel.experts[e]!.startsWith(`${gate}/`)).length;
      const uniformOwn = seen.length > 0 ? ownCount / seen.length : 0;
      gates.push({
        level: l,
        task: gate,
        own: share.own,
        otherTasks: share.otherTasks ?? 0,
        ...(share.shared === undefined ? {} : { shared: share.shared }),
        uniformOwn,
      });
      if (share.own < settings.underfittingThreshold * uniformOwn) {
        flags.push({
          kind: 'underfitting',
          level: l,
          task: gate,
          own: share.own,
          uniformOwn,
          message: `level ${l} gate of ${gate} ignores its own experts: ${percent(share.own)} of its weight (uniform: ${percent(uniformOwn)})`,
        });
      }
    }
  });
  return { rows: n, experts, gates, flags };
}

function percent(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}
