/** Names for the rows (gates) and columns (experts) of each level's gate weights. */
import type { NativeModelConfig, RawGateLevel } from './addon';
import { AdattError } from './errors';

export interface GateLevel {
  /** Fusion level, from 0. */
  level: number;
  /**
   * Who each gate serves: task names, plus 'shared' for the shared module's gate (adatt, ple; below
   * the last level). MMoE levels below the last have one gate per next-level expert: 'expert i'.
   */
  gates: string[];
  /**
   * The level's experts: '<task>/<i>' and 'shared/<i>' (adatt-sp, adatt, ple), 'expert <i>' (mmoe).
   * A PLE task gate sees only its own and the shared experts; its weight for the others is 0.
   */
  experts: string[];
  /** Per gate, its softmax weight on each expert, averaged over the batch. */
  weights: Float32Array[];
}

export interface GateLabels {
  gates: string[];
  experts: string[];
}

const SHARED = 'shared';

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Per level, the gate and expert labels; [] for kinds without softmax gates. */
export function gateLabels(config: NativeModelConfig): GateLabels[] {
  const taskNames = config.tasks.map((task) => task.name);
  const levels = range(config.expertDims.length);
  const isLastLevel = (level: number): boolean => level === levels.length - 1;
  const taskExperts = config.tasks.flatMap((task, t) => range(config.expertsPerTask[t] ?? 0).map((i) => `${task.name}/${i}`));
  const sharedExperts = range(config.sharedExperts).map((i) => `${SHARED}/${i}`);
  switch (config.kind) {
    case 'adatt-sp':
      return levels.map(() => ({ gates: taskNames, experts: taskExperts }));
    case 'adatt':
    case 'ple':
      return levels.map((level) => ({
        gates: isLastLevel(level) ? taskNames : [...taskNames, SHARED],
        experts: [...taskExperts, ...sharedExperts],
      }));
    case 'mmoe': {
      const experts = range(config.sharedExperts).map((i) => `expert ${i}`);
      return levels.map((level) => ({ gates: isLastLevel(level) ? taskNames : experts, experts }));
    }
    case 'cross-stitch':
    case 'shared-bottom':
    case 'single-task':
      return [];
  }
}

/** Attaches `gateLabels(config)` to the addon's gate levels, checking that their shapes match. */
export function labelGateLevels(labels: readonly GateLabels[], rawLevels: RawGateLevel[]): GateLevel[] {
  if (rawLevels.length !== labels.length) {
    throw new AdattError(`addon returned gate weights for ${rawLevels.length} levels, expected ${labels.length}`);
  }
  return rawLevels.map((raw, level) => {
    const { gates, experts } = labels[level] as GateLabels;
    if (raw.gates !== gates.length || raw.experts !== experts.length || raw.data.length !== gates.length * experts.length) {
      throw new AdattError(
        `addon returned level ${level} gate weights of ${raw.gates} gates x ${raw.experts} experts ` +
          `(${raw.data.length} values), expected ${gates.length} x ${experts.length}`,
      );
    }
    const weights = gates.map((_, g) => raw.data.subarray(g * experts.length, (g + 1) * experts.length));
    return { level, gates: [...gates], experts: [...experts], weights };
  });
}

/** `count` row indices spread evenly over `size` rows (all of them when count >= size). */
export function evenlySpacedRows(size: number, count: number): Int32Array {
  const n = Math.min(size, count);
  return Int32Array.from({ length: n }, (_, i) => Math.floor((i * size) / n));
}

export interface GateShares {
  gate: string;
  /** On the gate's own task's experts (undefined for gates that are not a task's, e.g. MMoE). */
  own?: number;
  otherTasks?: number;
  shared?: number;
  /** Entropy of the weights divided by log(experts): 0 = one expert only, 1 = uniform. */
  entropy: number;
}

/** Expert labels are '<task>/<i>' and 'shared/<i>' (adatt-sp, adatt, ple), or 'expert <i>' (mmoe). */
function moduleOf(expert: string): string | undefined {
  const slash = expert.lastIndexOf('/');
  return slash < 0 ? undefined : expert.slice(0, slash);
}

/** Per gate of a level, its shares of weight on own / other tasks' / shared experts, and its normalised entropy. */
export function gateShares(level: {
  gates: readonly string[];
  experts: readonly string[];
  weights: readonly ArrayLike<number>[];
}): GateShares[] {
  const modules = level.experts.map(moduleOf);
  return level.gates.map((gate, g) => {
    const weights = Array.from(level.weights[g] ?? []);
    const sum = (keep: (module: string | undefined) => boolean): number =>
      weights.reduce((total, w, e) => (keep(modules[e]) ? total + w : total), 0);
    const entropy = -weights.reduce((total, w) => (w > 0 ? total + w * Math.log(w) : total), 0) / Math.log(Math.max(weights.length, 2));
    if (!modules.includes(gate)) return { gate, entropy };
    return {
      gate,
      own: sum((module) => module === gate),
      otherTasks: sum((module) => module !== undefined && module !== gate && module !== 'shared'),
      ...(gate !== 'shared' && modules.includes('shared') ? { shared: sum((module) => module === 'shared') } : {}),
      entropy,
    };
  });
}
