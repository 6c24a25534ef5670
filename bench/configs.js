'use strict';
/**
 * The benchmark's model catalogue and its analytic FLOP count.
 *
 * Every model shares the paper's headline shape: two fusion levels of single-layer experts of 256
 * and 128 units, one-layer softmax gates, 64-unit towers, 128 dense inputs, binary tasks.
 */

const INPUT = 128;
const EXPERT_DIMS = [[256], [128]];
const TOWER_DIMS = [64];
const HEADLINE = 'adatt-sp-T3-m2';
const HEADLINE_BATCH = 1024;
const BATCHES = [256, 1024, 4096];

function tasks(count) {
  return Array.from({ length: count }, (_, t) => ({ name: `task${t}`, type: 'binary' }));
}

/** A user-facing ModelConfig (what createModel takes). */
function modelConfig(kind, taskCount, extra = {}) {
  return { kind, input: { dense: INPUT }, tasks: tasks(taskCount), expertDims: EXPERT_DIMS, towerDims: TOWER_DIMS, ...extra };
}

/** name -> { name, family, T, m, config } */
function catalogue() {
  const entries = [];
  for (const T of [2, 3, 8, 16]) {
    for (const m of [1, 2, 4]) {
      entries.push({ name: `adatt-sp-T${T}-m${m}`, family: 'adatt-sp', T, m, config: modelConfig('adatt-sp', T, { expertsPerTask: m }) });
    }
  }
  // The other kinds at the headline's T = 3, sized to be comparable: 2 experts per task (and 2 shared).
  entries.push({ name: 'adatt-T3', family: 'adatt', T: 3, m: 2, config: modelConfig('adatt', 3, { expertsPerTask: 2, sharedExperts: 2 }) });
  entries.push({ name: 'mmoe-T3', family: 'mmoe', T: 3, m: 2, config: modelConfig('mmoe', 3, { experts: 6 }) });
  entries.push({ name: 'ple-T3', family: 'ple', T: 3, m: 2, config: modelConfig('ple', 3, { expertsPerTask: 2, sharedExperts: 2 }) });
  entries.push({ name: 'cross-stitch-T3', family: 'cross-stitch', T: 3, m: 1, config: modelConfig('cross-stitch', 3) });
  entries.push({ name: 'shared-bottom-T3', family: 'shared-bottom', T: 3, m: 1, config: modelConfig('shared-bottom', 3) });
  return entries;
}

/** `--config` patterns: names or families (e.g. 'adatt-sp', 'mmoe'), or globs with `*` ('adatt-sp-T3-*', '*-T3'). */
function selectConfigs(patterns, quick) {
  const all = catalogue();
  if (patterns.length === 0) {
    const quickNames = [HEADLINE, 'adatt-sp-T8-m2', 'mmoe-T3', 'shared-bottom-T3'];
    return quick ? all.filter((c) => quickNames.includes(c.name)) : all;
  }
  const regexes = patterns.map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
  const chosen = all.filter((c) => regexes.some((r) => r.test(c.name) || r.test(c.family)));
  if (chosen.length === 0) {
    throw new Error(`--config ${patterns.join(',')} matches nothing; known: ${all.map((c) => c.name).join(', ')}`);
  }
  return chosen;
}

// ------------------------------------------------------------------------------------------- FLOPs

/** 2·in·out per example for each Linear of an MLP; returns [flops, output width]. */
function mlp(inDim, widths) {
  let flops = 0;
  for (const w of widths) {
    flops += 2 * inDim * w;
    inDim = w;
  }
  return [flops, inDim];
}

/**
 * Forward FLOPs per example of a normalised (NativeModelConfig) model: Linear layers (2·in·out),
 * the fusion's weighted sums (2·G·E·D for G gates over E experts of width D, the cross-stitch
 * [T,T] mix likewise); biases, ReLU, softmax and the residual are left out (under 1%).
 */
function forwardFlops(nc) {
  const T = nc.tasks.length;
  const input = nc.denseDim + nc.categorical.reduce((s, f) => s + f.dim, 0) + nc.multiValued.reduce((s, f) => s + f.dim, 0);
  const levels = nc.expertDims;
  let flops = 0;
  let d = input;
  const expertsAt = (count, inDim, widths) => count * mlp(inDim, widths)[0];
  switch (nc.kind) {
    case 'adatt-sp': {
      const E = T * nc.expertsPerTask[0];
      for (const widths of levels) {
        const out = widths[widths.length - 1];
        flops += expertsAt(E, d, widths) + T * 2 * d * E + 2 * T * E * out;
        d = out;
      }
      break;
    }
    case 'adatt': {
      const E = nc.expertsPerTask.reduce((a, b) => a + b, 0) + nc.sharedExperts;
      levels.forEach((widths, l) => {
        const out = widths[widths.length - 1];
        const G = l === levels.length - 1 ? T : T + 1;
        flops += expertsAt(E, d, widths) + G * 2 * d * E + 2 * G * E * out;
        d = out;
      });
      break;
    }
    case 'mmoe': {
      const E = nc.sharedExperts;
      levels.forEach((widths, l) => {
        const out = widths[widths.length - 1];
        const G = l === levels.length - 1 ? T : E;
        const gateWidths = nc.gateDims[l] ?? [];
        const [gateMlp, gateOut] = mlp(input, gateWidths);
        flops += expertsAt(E, d, widths) + G * (gateMlp + 2 * gateOut * E) + 2 * G * E * out;
        d = out;
      });
      break;
    }
    case 'ple': {
      const S = nc.sharedExperts;
      const E = nc.expertsPerTask.reduce((a, b) => a + b, 0) + S;
      levels.forEach((widths, l) => {
        const out = widths[widths.length - 1];
        let gates = nc.expertsPerTask.reduce((s, n) => s + 2 * d * (n + S) + 2 * (n + S) * out, 0);
        if (l < levels.length - 1) gates += 2 * d * E + 2 * E * out;
        flops += expertsAt(E, d, widths) + gates;
        d = out;
      });
      break;
    }
    case 'cross-stitch':
      for (const widths of levels) {
        const out = widths[widths.length - 1];
        flops += expertsAt(T, d, widths) + 2 * T * T * out;
        d = out;
      }
      break;
    case 'shared-bottom':
    case 'single-task': {
      const [f, out] = mlp(d, levels.flat());
      flops += (nc.kind === 'single-task' ? T : 1) * f;
      d = out;
      break;
    }
    default:
      throw new Error(`no FLOP count for kind ${nc.kind}`);
  }
  for (const task of nc.tasks) {
    const [tower, out] = mlp(d, nc.towerDims);
    flops += tower + 2 * out * task.outputs;
  }
  return flops;
}

module.exports = { BATCHES, HEADLINE, HEADLINE_BATCH, INPUT, catalogue, selectConfigs, forwardFlops };
