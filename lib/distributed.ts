/**
 * Data-parallel training on PyTorch's c10d engine: a TCPStore rendezvous, a Gloo process group for
 * host tensors and, in a LibTorch built with NCCL, an NCCL group for CUDA tensors; configured by
 * torchrun's environment contract so the same script runs under any launcher.
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import { loadAddon, type CudaBackend, type RawProcessGroup } from './addon';
import { callNative, callNativeAsync, ValidationError } from './errors';
import { NativeHandle } from './native-handle';
import { describeValue } from './validation';

export interface ProcessGroupOptions {
  /** Collective and rendezvous timeout: a dead or hung peer makes the others fail after it (default 60 s). */
  timeoutMs?: number;
  /** Where to read MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and LOCAL_RANK (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Which engine carries CUDA tensors (gradients of a model on a GPU): 'nccl' (an error when this
   * LibTorch has no NCCL or no GPU is visible), 'gloo' (staged through host memory), or 'auto'
   * (default: NCCL when usable, else Gloo). Host tensors always go through Gloo.
   */
  cudaBackend?: CudaBackend;
}

const CUDA_BACKENDS: readonly CudaBackend[] = ['auto', 'nccl', 'gloo'];

export class ProcessGroup extends NativeHandle<RawProcessGroup> {
  readonly rank: number;
  readonly worldSize: number;
  /** This process's index on its host (LOCAL_RANK), e.g. to pick `cuda:${localRank}`. */
  readonly localRank: number;
  /** The process groups in use: ['gloo'], or ['gloo', 'nccl'] when CUDA tensors go through NCCL. */
  readonly backends: readonly string[];

  /** @internal */
  constructor(raw: RawProcessGroup, localRank: number) {
    super(raw, 'process group');
    this.rank = callNative(() => raw.rank());
    this.worldSize = callNative(() => raw.worldSize());
    this.backends = Object.freeze(callNative(() => raw.backends()));
    this.localRank = localRank;
  }

  /** Resolves once every rank has reached it. */
  async barrier(): Promise<void> {
    const raw = this._raw();
    await callNativeAsync(() => raw.barrier());
  }

  /** @internal Every rank's numbers, in rank order (each rank gives as many). */
  async allGatherNumbers(values: readonly number[]): Promise<number[][]> {
    const raw = this._raw();
    const gathered = await callNativeAsync(() => raw.allGatherBytes(new Uint8Array(Float64Array.from(values).buffer)));
    return gathered.map((bytes) => Array.from(new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))));
  }

  /**
   * Resolves when every rank describes the same `plan` (ordered items and their values); otherwise
   * rejects on every rank alike with a ValidationError naming the first item on which a rank differs
   * from rank 0, with both values. Collectives then only ever see the buffer sizes every rank
   * expects: a size mismatch inside Gloo aborts the process from a thread nobody can catch on.
   */
  async agree(what: string, plan: readonly (readonly [item: string, value: unknown])[]): Promise<void> {
    const raw = this._raw();
    const local = Buffer.from(JSON.stringify(plan.map(([item, value]) => [item, JSON.stringify(value) ?? 'undefined'])));
    const plans = (await callNativeAsync(() => raw.allGatherBytes(local))).map(
      (bytes) => JSON.parse(Buffer.from(bytes).toString('utf8')) as [string, string][],
    );
    const reference = plans[0]!;
    plans.forEach((other, rank) => {
      for (let i = 0; i < Math.max(reference.length, other.length); i += 1) {
        const item = reference[i]?.[0] ?? other[i]![0];
        const [mine, theirs] = [reference[i]?.[1] ?? '(nothing)', other[i]?.[0] === item ? other[i]![1] : '(nothing)'];
        if (mine !== theirs) {
          throw new ValidationError(item, `${what}: the ranks disagree on ${item}: rank 0 has ${mine}, rank ${rank} has ${theirs}`);
        }
      }
    });
  }
}

function readInteger(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback?: number): number {
  const text = env[name];
  if (text === undefined || text === '') {
    if (fallback !== undefined) return fallback;
    throw new ValidationError(
      name,
      `${name} is not set; distributed training needs MASTER_ADDR, MASTER_PORT, ` +
        'WORLD_SIZE and RANK (as torchrun sets them, or `adatt launch --nproc N -- <command>`)',
    );
  }
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(name, `${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Joins the process group described by the environment; resolves when every rank has joined. */
export async function initProcessGroup(options: ProcessGroupOptions = {}): Promise<ProcessGroup> {
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new ValidationError('timeoutMs', `timeoutMs must be a positive integer, got ${describeValue(timeoutMs)}`);
  }
  const cudaBackend = options.cudaBackend ?? 'auto';
  if (!CUDA_BACKENDS.includes(cudaBackend)) {
    throw new ValidationError(
      'cudaBackend',
      `cudaBackend must be one of ${CUDA_BACKENDS.map((b) => `'${b}'`).join(', ')}, ` + `got ${describeValue(cudaBackend)}`,
    );
  }
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) readInteger(env, 'MASTER_ADDR', 0, 0);
  const worldSize = readInteger(env, 'WORLD_SIZE', 1, 65_536);
  const rank = readInteger(env, 'RANK', 0, worldSize - 1);
  const masterPort = readInteger(env, 'MASTER_PORT', 1, 65_535);
  const localRank = readInteger(env, 'LOCAL_RANK', 0, 65_535, 0);
  const addon = loadAddon();
  const raw = await callNativeAsync(() =>
    addon.initProcessGroup({ masterAddr: masterAddr!, masterPort, worldSize, rank, timeoutMs, cudaBackend }),
  );
  const group = new ProcessGroup(raw, localRank);
  try {
    const { libtorchVersion, runtimeLibtorchVersion } = addon.info();
    await group.agree('initProcessGroup', [
      ['adatt version', LIBRARY_VERSION],
      ['LibTorch', [libtorchVersion, runtimeLibtorchVersion]],
      ['cudaBackend', cudaBackend],
      ['backends', group.backends],
    ]);
  } catch (err) {
    group.dispose();
    throw err;
  }
  return group;
}

const LIBRARY_VERSION = (require('../package.json') as { version: string }).version;

export interface LaunchOptions {
  /** Processes to start on this host. */
  nproc: number;
  command: string;
  args?: string[];
  /** Default 127.0.0.1 and a free-ish port from 29500. */
  masterAddr?: string;
  masterPort?: number;
  env?: NodeJS.ProcessEnv;
  /**
   * When a worker fails, how long the others get to end on their own (they usually fail too, with
   * their own error) before they are sent SIGTERM. Default 5000 ms.
   */
  stopGraceMs?: number;
}

/** How one worker of `launch` ended. */
export interface WorkerExit {
  rank: number;
  /** The exit code; 128 + the signal's number when a signal ended it (as shells report it). */
  code: number;
  /** The signal that ended it, if one did. */
  signal?: NodeJS.Signals;
  /** Its last lines on stderr (which also go to this process's stderr as they come). */
  stderrTail: string[];
}

const STDERR_TAIL_LINES = 10;

/**
 * Starts `nproc` local workers with torchrun's variables (RANK = LOCAL_RANK = i, WORLD_SIZE = nproc)
 * and resolves with how each ended. When one fails, the others are stopped, as torchrun does.
 */
export async function launchWorkers(options: LaunchOptions): Promise<WorkerExit[]> {
  const { nproc, command, args = [] } = options;
  if (!Number.isInteger(nproc) || nproc < 1)
    throw new ValidationError('nproc', `nproc must be a positive integer, got ${describeValue(nproc)}`);
  if (typeof command !== 'string' || command === '') throw new ValidationError('command', 'command must be a non-empty string');
  const masterPort = options.masterPort ?? 29500 + Math.floor(Math.random() * 20000);
  const stopGraceMs = options.stopGraceMs ?? 5000;
  if (!Number.isInteger(stopGraceMs) || stopGraceMs < 0) {
    throw new ValidationError('stopGraceMs', `stopGraceMs must be a non-negative integer, got ${describeValue(stopGraceMs)}`);
  }
  let stopTimer: NodeJS.Timeout | undefined;
  const stopOthers = (): void => {
    stopTimer ??= setTimeout(() => {
      for (const other of children) if (other.exitCode === null && other.signalCode === null) other.kill('SIGTERM');
    }, stopGraceMs);
  };
  const children = Array.from({ length: nproc }, (_, rank) =>
    spawn(command, args, {
      stdio: ['inherit', 'inherit', 'pipe'],
      env: {
        ...(options.env ?? process.env),
        MASTER_ADDR: options.masterAddr ?? '127.0.0.1',
        MASTER_PORT: String(masterPort),
        WORLD_SIZE: String(nproc),
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(nproc),
      },
    }),
  );
  const exits = Promise.all(
    children.map(
      (child, rank) =>
        new Promise<WorkerExit>((resolve) => {
          const tail: string[] = [];
          let partial = '';
          child.stderr?.on('data', (chunk: Buffer) => {
            process.stderr.write(chunk);
            const lines = (partial + chunk.toString('utf8')).split('\n');
            partial = lines.pop() ?? '';
            tail.push(...lines);
            tail.splice(0, Math.max(0, tail.length - STDERR_TAIL_LINES));
          });
          const finish = (code: number, signal?: NodeJS.Signals): void => {
            if (partial !== '') tail.push(partial);
            if (code !== 0) stopOthers();
            resolve({ rank, code, ...(signal ? { signal } : {}), stderrTail: tail.slice(-STDERR_TAIL_LINES) });
          };
          child.on('error', () => finish(127));
          // 'close' (not 'exit'): stderr is fully read by then.
          child.on('close', (code, signal) => {
            if (signal) finish(128 + (os.constants.signals[signal] ?? 0), signal);
            else finish(code ?? 1);
          });
        }),
    ),
  );
  return exits.finally(() => clearTimeout(stopTimer));
}

/** `launchWorkers`, resolving with the workers' exit codes (128 + signal number for a signal). */
export async function launch(options: LaunchOptions): Promise<number[]> {
  return (await launchWorkers(options)).map((worker) => worker.code);
}
