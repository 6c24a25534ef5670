import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { NativeModelConfig, RawAddon, RawBatch, RawModel } from '../lib/addon';
import { nativeLoadError } from '../lib/addon';
import {
  AdattError,
  BusyError,
  callNative,
  callNativeAsync,
  ConfigError,
  DisposedError,
  FileError,
  fromNative,
  NativeLoadError,
  TorchError,
  ValidationError,
} from '../lib/errors';
import { fileError } from '../lib/files';
import { createModel, type Model } from '../lib/model';

// The Model tests below run against this stand-in for the addon, so they need no native build.
const fake = vi.hoisted(() => ({ addon: undefined as unknown }));
vi.mock('../lib/addon', async (importOriginal) => ({
  ...(await importOriginal<typeof import('../lib/addon')>()),
  loadAddon: () => fake.addon as RawAddon,
}));

function nativeError(code: string, message = 'boom'): Error {
  return Object.assign(new Error(message), { code });
}

describe('fromNative', () => {
  it.each([
    ['ADATT_TORCH', TorchError],
    ['ADATT_INVALID_ARGUMENT', ValidationError],
    ['ADATT_DISPOSED', DisposedError],
    ['ADATT_BUSY', BusyError],
    ['ADATT_IO', FileError],
    ['ADATT_INTERNAL', AdattError],
  ] as const)('maps %s to %s', (code, errorClass) => {
    const original = nativeError(code, 'something failed');
    const mapped = fromNative(original) as AdattError;
    expect(mapped).toBeInstanceOf(errorClass);
    expect(mapped).toBeInstanceOf(AdattError);
    expect(mapped.code).toBe(code);
    expect(mapped.name).toBe(errorClass.name);
    expect(mapped.message).toBe('something failed');
    expect(mapped.cause).toBe(original);
    expect(mapped.stack?.split('\n')[0]).toBe(`${errorClass.name}: something failed`);
    expect(mapped.stack?.split('\n').slice(1)).toEqual(original.stack?.split('\n').slice(1));
  });

  it('gives native validation errors an empty field', () => {
    expect((fromNative(nativeError('ADATT_INVALID_ARGUMENT')) as ValidationError).field).toBe('');
  });

  it('leaves other errors and values untouched', () => {
    const plain = new TypeError('not native');
    const unknownCode = nativeError('ENOENT');
    const typed = new TorchError('already typed');
    expect(fromNative(plain)).toBe(plain);
    expect(fromNative(unknownCode)).toBe(unknownCode);
    expect(fromNative(typed)).toBe(typed);
    expect(fromNative('a string')).toBe('a string');
    expect(fromNative(nativeError('toString'))).toBeInstanceOf(Error);
    expect(fromNative(nativeError('toString'))).not.toBeInstanceOf(AdattError);
  });
});

describe('callNative and callNativeAsync', () => {
  it('return results unchanged', async () => {
    expect(callNative(() => 3)).toBe(3);
    await expect(callNativeAsync(async () => 4)).resolves.toBe(4);
  });

  it('rethrow native errors typed', async () => {
    expect(() =>
      callNative(() => {
        throw nativeError('ADATT_BUSY');
      }),
    ).toThrow(BusyError);
    await expect(callNativeAsync(() => Promise.reject(nativeError('ADATT_IO')))).rejects.toThrow(FileError);
    // A synchronous throw from a promise-returning call becomes a rejection too.
    await expect(
      callNativeAsync(() => {
        throw nativeError('ADATT_TORCH');
      }),
    ).rejects.toThrow(TorchError);
  });

  it("give frameless native errors the caller's frames", async () => {
    const frameless = nativeError('ADATT_TORCH', 'CUDA out of memory');
    frameless.stack = 'Error: CUDA out of memory';
    const error = await callNativeAsync(() => Promise.reject(frameless)).catch((err: unknown) => err as TorchError);
    expect(error.stack).toMatch(/^TorchError: CUDA out of memory\n {4}at /);
    expect(error.stack).toContain('errors.test.ts');
  });
});

describe('error classes', () => {
  it('carry codes and fields', () => {
    const config = new ConfigError('tasks[1].classes', 'bad');
    expect(config).toMatchObject({ name: 'ConfigError', code: 'ADATT_CONFIG', field: 'tasks[1].classes' });
    expect(new ValidationError('batch.dense', 'bad')).toMatchObject({ code: 'ADATT_INVALID_ARGUMENT', field: 'batch.dense' });
    expect(new NativeLoadError('x')).toMatchObject({ name: 'NativeLoadError', code: 'ADATT_NATIVE_LOAD' });
  });
});

describe('fileError', () => {
  const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: raw message`), { code });

  it.each([
    ['read', 'EISDIR', 'cannot read /x/a: it is a directory, expected a file'],
    ['write', 'ENOTDIR', 'cannot write /x/a: one of its parent folders is a file, expected a directory'],
    ['create folder', 'ENOTDIR', 'cannot create folder /x/a: it or one of its parents is a file, expected a directory'],
    ['create folder', 'EEXIST', 'cannot create folder /x/a: it exists and is not a directory'],
    ['write', 'ENOENT', 'cannot write /x/a: its folder /x does not exist'],
    ['read', 'ENOENT', 'cannot read /x/a: it does not exist'],
    ['read', 'EIO', 'cannot read /x/a: EIO: raw message'],
  ] as const)('names the path and what was expected (%s, %s)', (action, code, message) => {
    const cause = errno(code);
    const error = fileError(action, '/x/a', cause);
    expect(error).toBeInstanceOf(FileError);
    expect(error.message).toBe(message);
    expect(error.cause).toBe(cause);
  });
});

describe('nativeLoadError', () => {
  it('says when no addon has been built', () => {
    const error = nativeLoadError(new Error('No native build was found for platform=linux arch=x64\n    loaded from: /x\n'));
    expect(error).toBeInstanceOf(NativeLoadError);
    expect(error.message).toMatch(/no compiled native addon found/);
    expect(error.message).toMatch(/npm run build:native/);
    expect(error.message).toMatch(/LIBTORCH_USE_PYTORCH=1/);
    expect(error.message).toMatch(/Cause: No native build was found/);
  });

  it.each(['libtorch_cpu.so', 'libc10.so', 'libtorch.so.2.1', 'libc10_cuda.so'])('names a missing %s', (library) => {
    const cause = new Error(`${library}: cannot open shared object file: No such file or directory`);
    const error = nativeLoadError(cause);
    expect(error.message).toContain(`LibTorch shared library ${library} was not`);
    expect(error.message).toMatch(/libtorch-dev/);
    expect(error.message).toMatch(/LD_LIBRARY_PATH/);
    expect(error.message).toContain(`Cause: ${cause.message}`);
    expect(error.cause).toBe(cause);
  });

  it('suggests a rebuild for other load failures', () => {
    const error = nativeLoadError(new Error('/x/adatt.node: undefined symbol: _ZN3c1019UndefinedTensorImpl10_singletonE'));
    expect(error.message).toMatch(/could not be loaded.*rebuild/);
    expect(error.message).toContain('undefined symbol');
  });
});

describe('Model errors (fake addon)', () => {
  const calls: { method: string; args: unknown[] }[] = [];
  let nextError: Error | undefined;

  class FakeRawModel implements RawModel {
    constructor(readonly config: NativeModelConfig) {}
    #record<T>(method: string, args: unknown[], result: T): Promise<T> {
      calls.push({ method, args });
      const error = nextError;
      nextError = undefined;
      return error ? Promise.reject(error) : Promise.resolve(result);
    }
    forward(batch: RawBatch) {
      return this.#record(
        'forward',
        [batch],
        this.config.tasks.map((task) => new Float32Array(batch.size * task.outputs)),
      );
    }
    gateWeights(batch: RawBatch) {
      return this.#record('gateWeights', [batch], [{ gates: 2, experts: 2, data: Float32Array.from([0.5, 0.5, 0.25, 0.75]) }]);
    }
    gradients(batch: RawBatch, seeds: Float32Array[]) {
      return this.#record('gradients', [batch, seeds], {});
    }
    stateDict(layout: string) {
      return this.#record('stateDict', [layout], {});
    }
    loadStateDict(tensors: unknown, strict: boolean) {
      return this.#record('loadStateDict', [tensors, strict], undefined);
    }
    saveWeights(path: string, layout: string) {
      return this.#record('saveWeights', [path, layout], undefined);
    }
    loadWeights(path: string, strict: boolean) {
      return this.#record('loadWeights', [path, strict], undefined);
    }
    to(device: string) {
      return this.#record('to', [device], undefined);
    }
    device() {
      return 'cpu';
    }
    parameterCount() {
      return 123;
    }
    expertActivity(...args: unknown[]) {
      return this.#record('expertActivity', args, { rows: 0, levels: [] });
    }
    evaluate(...args: unknown[]) {
      return this.#record('evaluate', args, []);
    }
    predict(...args: unknown[]) {
      return this.#record('predict', args, []);
    }
    dispose() {
      calls.push({ method: 'dispose', args: [] });
    }
  }

  const config = {
    kind: 'adatt-sp' as const,
    input: { categorical: [{ name: 'item', vocab: 4, dim: 2 }] },
    tasks: [
      { name: 'click', type: 'binary' as const },
      { name: 'rating', type: 'multiclass' as const, classes: 3 },
    ],
    expertDims: [[4]],
    expertsPerTask: 1,
  };
  const batch = { categorical: [[1], [3]] };
  let model: Model;

  beforeEach(() => {
    calls.length = 0;
    nextError = undefined;
    fake.addon = { Model: FakeRawModel, info: () => ({}), setNumThreads: () => undefined };
    model = createModel(config);
  });

  afterEach(() => model.dispose());

  it('rejects a bad config before touching the addon', () => {
    fake.addon = undefined;
    expect(() => createModel({ ...config, expertsPerTask: 0 })).toThrow(ConfigError);
  });

  it('keys forward outputs by task name', async () => {
    const outputs = await model.forward(batch);
    expect(Object.keys(outputs)).toEqual(['click', 'rating']);
    expect(outputs.rating).toHaveLength(6);
    expect(model.config).toEqual(config);
    expect(Object.isFrozen(model.config)).toBe(true);
  });

  it('labels gate weights', async () => {
    const [level] = await model.gateWeights(batch);
    expect(level).toMatchObject({ level: 0, gates: ['click', 'rating'], experts: ['click/0', 'rating/0'] });
    expect(level?.weights.map((w) => Array.from(w))).toEqual([
      [0.5, 0.5],
      [0.25, 0.75],
    ]);
  });

  it('maps native failures to typed errors', async () => {
    nextError = nativeError('ADATT_TORCH', 'index out of range');
    await expect(model.forward(batch)).rejects.toThrow(TorchError);
    nextError = nativeError('ADATT_IO', 'cannot open /nope');
    await expect(model.loadWeights('/nope')).rejects.toThrow(FileError);
  });

  it('rejects bad inputs before calling the addon', async () => {
    await expect(model.forward({ categorical: [[4]] })).rejects.toThrow(ValidationError);
    await expect(model.to('gpu' as 'cpu')).rejects.toThrow(/device must be 'cpu', 'cuda' or 'cuda:<index>', got "gpu"/);
    await expect(model.stateDict({ layout: 'torch' as 'native' })).rejects.toThrow(/options.layout must be one of 'reference', 'native'/);
    await expect(model.loadStateDict({ w: { shape: [2, 2], data: new Float32Array(3) } })).rejects.toThrow(
      /stateDict\["w"\].data has 3 values but shape \[2, 2\] needs 4/,
    );
    await expect(model.loadWeights('', {})).rejects.toThrow(/path must be a non-empty string/);
    await expect(model.loadWeights('/w.pt', { strict: 1 as unknown as boolean })).rejects.toThrow(/options.strict must be a boolean/);
    await expect(model.gradients(batch, { like: new Float32Array(2) })).rejects.toThrow(/seeds has no task 'like'/);
    await expect(model.gradients(batch, { rating: new Float32Array(2) })).rejects.toThrow(/2 x 3 = 6 values, got 2/);
    expect(calls).toEqual([]);
  });

  it('fills seeds of omitted tasks with zeros and resolves paths', async () => {
    await model.gradients(batch, { click: [1, -1] });
    const [, seeds] = calls[0]!.args as [RawBatch, Float32Array[]];
    expect(seeds.map((seed) => Array.from(seed))).toEqual([
      [1, -1],
      [0, 0, 0, 0, 0, 0],
    ]);
    await model.saveWeights('weights.pt');
    expect(calls[1]?.args).toEqual([`${process.cwd()}/weights.pt`, 'reference']);
  });

  it('throws DisposedError after dispose, without calling the addon', async () => {
    model[Symbol.dispose]();
    model.dispose();
    expect(model.disposed).toBe(true);
    expect(calls).toEqual([{ method: 'dispose', args: [] }]);
    await expect(model.forward(batch)).rejects.toThrow(DisposedError);
    await expect(model.to('cpu')).rejects.toThrow(DisposedError);
    expect(() => model.device).toThrow(DisposedError);
    expect(() => model.parameterCount()).toThrow(DisposedError);
    expect(calls).toHaveLength(1);
  });

  it('stays usable when the addon refuses to dispose', () => {
    vi.spyOn(FakeRawModel.prototype, 'dispose').mockImplementationOnce(() => {
      throw nativeError('ADATT_BUSY', 'busy');
    });
    expect(() => model.dispose()).toThrow(BusyError);
    expect(model.disposed).toBe(false);
    expect(model.parameterCount()).toBe(123);
  });
});
