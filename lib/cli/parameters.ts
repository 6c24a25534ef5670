/**
 * Parameter counts per part of a model, from the reference-layout names of `stateDict()`
 * (docs/architecture.md lists them): embeddings, experts and gates per level, towers per task.
 */
import type { StateDict } from '../model';

export interface ParameterGroup {
  part: string;
  tensors: number;
  parameters: number;
}

type Rule = [RegExp, (match: RegExpMatchArray, tasks: readonly string[]) => string];

const taskName = (index: string, tasks: readonly string[]): string => tasks[Number(index)] ?? `task ${index}`;

const RULES: readonly Rule[] = [
  [/^(?:bag_)?embeddings\./, () => 'embeddings'],
  [/^mtl_arch\.experts\.(\d+)\./, (m) => `experts, level ${m[1]}`],
  [/^mtl_arch\.(?:gate_weights|gates)\.(\d+)\./, (m) => `gates, level ${m[1]}`],
  [/^mtl_arch\.self_exp_weights\./, () => 'native-expert weights'],
  [/^mtl_arch\.stitchs\.(\d+)\./, (m) => `cross-stitch units, level ${m[1]}`],
  [/^mtl_arch\.bottom_projection\./, () => 'shared bottom'],
  [/^mtl_arch\.task_nets\.(\d+)\./, (m, tasks) => `network of ${taskName(m[1]!, tasks)}`],
  [/^task_modules\.(\d+)\./, (m, tasks) => `tower of ${taskName(m[1]!, tasks)}`],
];

function partOf(name: string, tasks: readonly string[]): string {
  for (const [pattern, label] of RULES) {
    const match = name.match(pattern);
    if (match) return label(match, tasks);
  }
  return 'other';
}

/** Groups a reference-layout state dict by part, in the order parts first appear. */
export function groupParameters(state: StateDict, taskNames: readonly string[]): ParameterGroup[] {
  const groups = new Map<string, ParameterGroup>();
  for (const [name, tensor] of Object.entries(state)) {
    const part = partOf(name, taskNames);
    const group = groups.get(part) ?? { part, tensors: 0, parameters: 0 };
    group.tensors += 1;
    group.parameters += tensor.shape.reduce((product, extent) => product * extent, 1);
    groups.set(part, group);
  }
  return [...groups.values()];
}
