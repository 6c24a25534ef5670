/** `Model`: the JS object users hold; validates inputs and drives one native model. */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { loadAddon, type NativeModelConfig, type RawBatch, type RawModel, type WeightLayout } from './addon';
import { toRawBatch, batchSchema, type Batch, type BatchSchema } from './batch';
import { normalizeModelConfig, validateModelConfig, type ModelConfig, type TaskConfig } from './config';
import { callNative, callNativeAsync, FileError } from './errors';
import { fileError, prepareAtomicWrite, requireReadableFile, writeFileAtomic } from './files';
import { decodeSafetensors, encodeSafetensors } from './safetensors';
import { measureExpertHealth, type ExpertHealth, type ExpertHealthOptions } from './expert-health';
import type { TensorDataset } from './dataset';
import { TaskModel } from './task-model';
import type { StateDict, Tensor } from './tensor';
import { gateLabels, labelGateLevels, type GateLabels, type GateLevel } from './gates';
import { describeValue, findUnknownKey, isRecord, optionError, quoteList, readBoolean, readChoice, readOptions } from './validation';

export type { WeightLayout } from './addon';

export type { Device, StateDict, Tensor } from './tensor';

export interface StateDictOptions {
  /** 'reference' (default): facebookresearch/AdaTT names and shapes; 'native': the stacked storage. */
  layout?: WeightLayout;
}

/** Weight file formats: PyTorch's torch.save zip (default) or safetensors. */
export type WeightFormat = 'torch' | 'safetensors';

export interface SaveWeightsOptions extends StateDictOptions {
  /** Default: 'safetensors' for a .safetensors file name, else 'torch'. */
  format?: WeightFormat;
}

export interface LoadOptions {
  /** Reject missing and unexpected parameters (default true), as in PyTorch. */
  strict?: boolean;
}

/** The first byte of a pickle of protocol 2 or later (PICKLE's PROTO opcode). */
const PICKLE_PROTO = 0x80;

const LAYOUTS: readonly WeightLayout[] = ['reference', 'native'];

function readLayout(options: unknown): WeightLayout {
  return readChoice(readOptions(options, 'options', ['layout']).layout, 'options.layout', LAYOUTS, 'reference');
}

function readStrict(options: unknown): boolean {
  return readBoolean(readOptions(options, 'options', ['strict']).strict, 'options.strict', true);
}

/** An absolute path: the addon may resolve relative ones against another directory, and C++ strings end at NUL. */
function readPath(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    optionError('path', `path must be a non-empty string without NUL characters, got ${describeValue(value)}`);
  }
  return path.resolve(value);
}

function readStateDict(value: unknown): StateDict {
  if (!isRecord(value)) optionError('stateDict', `stateDict must be an object of tensors, got ${describeValue(value)}`);
  const entries = Object.entries(value).map(([name, tensor]): [string, Tensor] => {
    const field = `stateDict[${JSON.stringify(name)}]`;
    if (!isRecord(tensor) || !Array.isArray(tensor.shape) || !(tensor.data instanceof Float32Array)) {
      optionError(field, `${field} must be { shape: number[], data: Float32Array }, got ${describeValue(tensor)}`);
    }
    const shape: unknown[] = tensor.shape;
    if (!shape.every((extent) => typeof extent === 'number' && Number.isInteger(extent) && extent >= 0)) {
      optionError(`${field}.shape`, `${field}.shape must hold non-negative integers, got [${shape.map(describeValue).join(', ')}]`);
    }
    const numel = (shape as number[]).reduce((product, extent) => product * extent, 1);
    if (numel !== tensor.data.length) {
      optionError(`${field}.data`, `${field}.data has ${tensor.data.length} values but shape [${shape.join(', ')}] needs ${numel}`);
    }
    return [name, { shape: [...(shape as number[])], data: tensor.data }];
  });
  return Object.fromEntries(entries);
}

/**
 * Forward calls whose work (rows x dense, i.e. non-embedding, parameters, plus every bag id x its
 * embedding width) stays within this run on the calling thread: about a millisecond of arithmetic
 * at most, where a queued call would pay two thread wake-ups (docs/serving.md, "Per-call latency").
 * The addon queues them anyway when the model is not on the CPU.
 */
const INLINE_FORWARD_WORK = 4_000_000;

export class Model extends TaskModel<RawModel> {
  /** The validated config this model was built from (deep-frozen). */
  readonly config: ModelConfig;
  readonly #nativeConfig: NativeModelConfig;
  readonly #schema: BatchSchema;
  readonly #gateLabels: GateLabels[];
  /** Dense (non-embedding) parameters, and each multi-valued feature's embedding width: a forward's work (see INLINE_FORWARD_WORK). */
  readonly #denseParameters: number;
  readonly #bagWidths: number[];

  private constructor(raw: RawModel, config: ModelConfig, nativeConfig: NativeModelConfig) {
    super(raw, 'model');
    this.config = config;
    this.#nativeConfig = nativeConfig;
    this.#schema = batchSchema(config.input);
    this.#gateLabels = gateLabels(nativeConfig);
    const tables = [...nativeConfig.categorical, ...nativeConfig.multiValued].reduce((sum, f) => sum + f.vocab * f.dim, 0);
    this.#denseParameters = callNative(() => raw.parameterCount()) - tables;
    this.#bagWidths = nativeConfig.multiValued.map((feature) => feature.dim);
  }

  /** Builds a model with freshly initialised parameters on the CPU. Throws `ConfigError` for a bad config. */
  static create(config: ModelConfig): Model {
    const validated = validateModelConfig(config);
    const nativeConfig = normalizeModelConfig(validated);
    const addon = loadAddon();
    const raw = callNative(() => new addon.Model(nativeConfig));
    return new Model(raw, validated, nativeConfig);
  }

  get tasks(): readonly TaskConfig[] {
    return this.config.tasks;
  }

  /**
   * Per task name, the tower outputs [B * outputs] (logits for binary and multiclass tasks). Small
   * batches on the CPU are computed on the calling thread (cheaper than handing them to the compute
   * thread and back); larger ones off the event loop.
   */
  async forward(batch: Batch): Promise<Record<string, Float32Array>> {
    const raw = this._raw();
    const rawBatch = toRawBatch(batch, this.#schema);
    const outputs = await callNativeAsync(() => raw.forward(rawBatch, this.#isSmall(rawBatch)));
    return Object.fromEntries(this.#nativeConfig.tasks.map((task, t) => [task.name, outputs[t] as Float32Array]));
  }

  /**
   * Per task name, predictions for the batch's rows as `predict` gives them (probabilities, calibrated
   * unless `calibrated: false`; class probabilities; values), in one call: what serving uses.
   */
  async predictions(batch: Batch, options: { calibrated?: boolean } = {}): Promise<Record<string, Float32Array>> {
    const raw = this._raw();
    const rawBatch = toRawBatch(batch, this.#schema);
    const calibrators = this._calibratorsFor(readOptions(options, 'options', ['calibrated']).calibrated);
    const spec = { taskTypes: this.config.tasks.map((task) => task.type), ...(calibrators ? { calibrators } : {}) };
    const outputs = await callNativeAsync(() => raw.forward(rawBatch, this.#isSmall(rawBatch), spec));
    return Object.fromEntries(this.#nativeConfig.tasks.map((task, t) => [task.name, outputs[t] as Float32Array]));
  }

  #isSmall(batch: RawBatch): boolean {
    const bags = (batch.multiValued ?? []).reduce((sum, bag, f) => sum + bag.indices.length * (this.#bagWidths[f] ?? 0), 0);
    return batch.size * this.#denseParameters + bags <= INLINE_FORWARD_WORK;
  }

  /** Per fusion level, the softmax gate weights averaged over the batch; [] for kinds without gates. */
  async gateWeights(batch: Batch): Promise<GateLevel[]> {
    const raw = this._raw();
    const rawBatch = toRawBatch(batch, this.#schema);
    if (this.#gateLabels.length === 0) return [];
    const levels = await callNativeAsync(() => raw.gateWeights(rawBatch));
    return labelGateLevels(this.#gateLabels, levels);
  }

  /**
   * Expert health on rows of `data` (docs/training.md, "Expert health"): per level and expert its
   * share of zero ReLU outputs, dead units and output scale, per task gate its shares on own /
   * other tasks' / shared experts, and flags for collapse, degradation and underfitting.
   */
  async expertStats(data: TensorDataset, options?: ExpertHealthOptions): Promise<ExpertHealth> {
    return measureExpertHealth(this, data, options);
  }

  /**
   * Gradients of Σ_t <output_t, seeds[t]> with respect to every parameter (reference layout), i.e.
   * a backward pass seeded with `seeds`. A task left out of `seeds` contributes nothing.
   */
  async gradients(batch: Batch, seeds: Record<string, Float32Array | readonly number[]>): Promise<StateDict> {
    const raw = this._raw();
    const rawBatch = toRawBatch(batch, this.#schema);
    const rawSeeds = this.#readSeeds(seeds, rawBatch.size);
    return callNativeAsync(() => raw.gradients(rawBatch, rawSeeds));
  }

  /** A copy of every parameter, keyed by name. */
  async stateDict(options?: StateDictOptions): Promise<StateDict> {
    const raw = this._raw();
    const layout = readLayout(options);
    return callNativeAsync(() => raw.stateDict(layout));
  }

  /** Copies parameters in from `stateDict` (either layout). */
  async loadStateDict(stateDict: StateDict, options?: LoadOptions): Promise<void> {
    const raw = this._raw();
    const tensors = readStateDict(stateDict);
    const strict = readStrict(options);
    await callNativeAsync(() => raw.loadStateDict(tensors, strict));
  }

  /**
   * Writes the parameters (atomically) as a dict of tensors that `torch.load` reads, or as
   * safetensors (`safetensors.torch.load_file`).
   */
  async saveWeights(file: string, options?: SaveWeightsOptions): Promise<void> {
    const raw = this._raw();
    const resolved = readPath(file);
    const { format: requested, ...layoutOptions } = readOptions(options, 'options', ['layout', 'format']);
    const layout = readLayout(layoutOptions);
    const format = requested ?? (resolved.endsWith('.safetensors') ? 'safetensors' : 'torch');
    if (format === 'torch') {
      await prepareAtomicWrite(resolved);
      await callNativeAsync(() => raw.saveWeights(resolved, layout));
    } else if (format === 'safetensors') {
      await writeFileAtomic(resolved, encodeSafetensors(await this.stateDict({ layout }), { format: 'pt', layout }));
    } else {
      optionError('options.format', `options.format must be 'torch' or 'safetensors', got ${describeValue(format)}`);
    }
  }

  /**
   * Reads parameters written by `saveWeights`, by `torch.save(state_dict)` or as safetensors, in
   * either layout (the format is recognised from the file's first bytes).
   */
  async loadWeights(file: string, options?: LoadOptions): Promise<void> {
    const raw = this._raw();
    const resolved = readPath(file);
    const strict = readStrict(options);
    await requireReadableFile(resolved);
    const head = Buffer.alloc(2);
    const readFailed = (err: unknown): never => {
      throw fileError('read', resolved, err);
    };
    const handle = await fs.open(resolved, 'r').catch(readFailed);
    try {
      await handle.read(head, 0, 2, 0).catch(readFailed);
    } finally {
      await handle.close();
    }
    // torch.save's format before PyTorch 1.6 (and with _use_new_zipfile_serialization=False): a bare pickle.
    if (head[0] === PICKLE_PROTO && (head[1] as number) >= 2 && (head[1] as number) <= 5) {
      throw new FileError(
        `${resolved} was written by torch.save in its legacy (non-zip) format, which adatt does not read; re-save it in PyTorch with torch.save(torch.load(path), path), which writes the zip format`,
      );
    }
    if (head.toString('latin1') === 'PK') {
      await callNativeAsync(() => raw.loadWeights(resolved, strict));
      return;
    }
    const tensors = decodeSafetensors(await fs.readFile(resolved).catch(readFailed), resolved);
    await callNativeAsync(() => raw.loadStateDict(tensors, strict));
  }

  #readSeeds(seeds: unknown, batchSize: number): Float32Array[] {
    if (!isRecord(seeds)) optionError('seeds', `seeds must be an object keyed by task name, got ${describeValue(seeds)}`);
    const tasks = this.#nativeConfig.tasks;
    const unknownTask = findUnknownKey(
      seeds,
      tasks.map((task) => task.name),
    );
    if (unknownTask !== undefined) {
      optionError(`seeds.${unknownTask}`, `seeds has no task '${unknownTask}' (tasks: ${quoteList(tasks.map((task) => task.name))})`);
    }
    return tasks.map(({ name, outputs }) => {
      const length = batchSize * outputs;
      const seed = Object.hasOwn(seeds, name) ? seeds[name] : undefined;
      if (seed === undefined) return new Float32Array(length);
      const field = `seeds.${name}`;
      if (!(seed instanceof Float32Array) && !Array.isArray(seed)) {
        optionError(field, `${field} must be a Float32Array or an array of numbers, got ${describeValue(seed)}`);
      }
      if (seed.length !== length) {
        optionError(field, `${field} must hold batch size x outputs = ${batchSize} x ${outputs} = ${length} values, got ${seed.length}`);
      }
      if (seed instanceof Float32Array) return seed;
      for (let i = 0; i < seed.length; i += 1) {
        if (typeof seed[i] !== 'number')
          optionError(`${field}[${i}]`, `${field}[${i}] must be a number, got ${i in seed ? describeValue(seed[i]) : 'an empty slot'}`);
      }
      return Float32Array.from(seed as number[]);
    });
  }
}

/** Same as `Model.create(config)`. */
export function createModel(config: ModelConfig): Model {
  return Model.create(config);
}
