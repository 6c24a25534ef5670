/** Compute threads for this process: the BLAS's pool (GEMMs) and LibTorch's intra-op pool (the rest). */
import { loadAddon } from './addon';
import { callNative, ValidationError } from './errors';
import { describeValue, findUnknownKey } from './validation';

/** Without a BLAS limit to go by. */
const MAX_THREADS = 1024;

export interface ThreadOptions {
  /**
   * LibTorch's own intra-op (OpenMP) threads. Default: `n`, except with OpenBLAS's pthread build
   * (Debian's), whose pool is separate from LibTorch's: there the GEMMs get the `n` threads and
   * LibTorch's pool 1, because OpenMP workers spinning between kernels starve OpenBLAS's threads
   * (a training step ran about 3x slower with both pools at 2 threads on 2 cores).
   */
  intraOpThreads?: number;
  /**
   * How many model reads (forward, predict, evaluate, metrics) may run at once, each on its own
   * inference thread with the thread counts above; training runs one job at a time on the compute
   * thread. Default 1 (each call already uses the threads above); for concurrent serving,
   * `setNumThreads(1, { inferenceThreads: cores })` gives each call one core.
   */
  inferenceThreads?: number;
}

/**
 * Sets how many threads compute uses: OpenBLAS's threads for every GEMM and LibTorch's intra-op
 * threads (`torch.set_num_threads`) for the rest, applied to every worker thread. `info()` reports both.
 */
export function setThreadCount(n: number, options: ThreadOptions = {}): void {
  const addon = loadAddon();
  // OpenBLAS past the MAX_THREADS it was built for aborts or livelocks instead of failing.
  const blasLimit = callNative(() => addon.info()).blasMaxThreads;
  const checkCount = (value: unknown, field: string, max: number, why = ''): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
      throw new ValidationError(field, `setNumThreads: ${field} must be an integer in [1, ${max}]${why}, got ${describeValue(value)}`);
    }
    return value;
  };
  checkCount(
    n,
    'n',
    blasLimit > 0 ? blasLimit : MAX_THREADS,
    blasLimit > 0 ? ` (the BLAS was built for at most ${blasLimit} threads)` : '',
  );
  if (options === null || typeof options !== 'object') {
    throw new ValidationError('options', `setNumThreads: options must be an object, got ${describeValue(options)}`);
  }
  const unknown = findUnknownKey(options as Record<string, unknown>, ['intraOpThreads', 'inferenceThreads']);
  if (unknown !== undefined) throw new ValidationError(unknown, `setNumThreads: unknown option '${unknown}'`);
  const intraOp = options.intraOpThreads === undefined ? 0 : checkCount(options.intraOpThreads, 'intraOpThreads', MAX_THREADS);
  const inference = options.inferenceThreads === undefined ? undefined : checkCount(options.inferenceThreads, 'inferenceThreads', 64);
  callNative(() => addon.setNumThreads(n, intraOp, inference));
}
