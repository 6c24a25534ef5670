/**
 * Data-parallel training on PyTorch's c10d engine: a TCPStore rendezvous, a Gloo process group for
 * host tensors and, in a LibTorch built with NCCL, an NCCL group for CUDA tensors; configured by
 * torchrun's environment contract so the same script runs under any launcher.
 */
import { spawn } from 'node:child_process';
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
}

function readInteger(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback?: number): number {
  const text = env[name];
  if (text === undefined || text === '') {
    if (fallback !== undefined) return fallback;
    throw new ValidationError(name, `${name} is not set; distributed training needs MASTER_ADDR, MASTER_PORT, ` +
      'WORLD_SIZE and RANK (as torchrun sets them, or `adatt launch --nproc N -- <command>`)');
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
    throw new ValidationError('cudaBackend', `cudaBackend must be one of ${CUDA_BACKENDS.map((b) => `'${b}'`).join(', ')}, ` +
      `got ${describeValue(cudaBackend)}`);
  }
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr) readInteger(env, 'MASTER_ADDR', 0, 0);
  const worldSize = readInteger(env, 'WORLD_SIZE', 1, 65_536);
  const rank = readInteger(env, 'RANK', 0, worldSize - 1);
  const masterPort = readInteger(env, 'MASTER_PORT', 1, 65_535);
  const localRank = readInteger(env, 'LOCAL_RANK', 0, 65_535, 0);
  const addon = loadAddon();
  const raw = await callNativeAsync(() => addon.initProcessGroup({ masterAddr: masterAddr!, masterPort, worldSize, rank, timeoutMs, cudaBackend }));
  return new ProcessGroup(raw, localRank);
}

export interface LaunchOptions {
  /** Processes to start on this host. */
  nproc: number;
  command: string;
  args?: string[];
  /** Default 127.0.0.1 and a free-ish port from 29500. */
  masterAddr?: string;
  masterPort?: number;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts `nproc` local workers with torchrun's variables (RANK = LOCAL_RANK = i, WORLD_SIZE = nproc)
 * and resolves with their exit codes. When one fails, the others are stopped, as torchrun does.
 */
export async function launch(options: LaunchOptions): Promise<number[]> {
  const { nproc, command, args = [] } = options;
  if (!Number.isInteger(nproc) || nproc < 1) throw new ValidationError('nproc', `nproc must be a positive integer, got ${describeValue(nproc)}`);
  if (typeof command !== 'string' || command === '') throw new ValidationError('command', 'command must be a non-empty string');
  const masterPort = options.masterPort ?? 29500 + Math.floor(Math.random() * 20000);
  const children = Array.from({ length: nproc }, (_, rank) => spawn(command, args, {
    stdio: 'inherit',
    env: {
      ...(options.env ?? process.env), MASTER_ADDR: options.masterAddr ?? '127.0.0.1', MASTER_PORT: String(masterPort),
      WORLD_SIZE: String(nproc), RANK: String(rank), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(nproc),
    },
  }));
  return Promise.all(children.map((child) => new Promise<number>((resolve) => {
    child.on('error', () => resolve(127));
    child.on('exit', (code, signal) => {
      const status = code ?? (signal ? 128 + 9 : 1);
      if (status !== 0) for (const other of children) if (other.exitCode === null) other.kill('SIGTERM');
      resolve(status);
    });
  })));
}
