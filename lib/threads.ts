/** LibTorch's intra-op thread count for this process. */
import { loadAddon } from './addon';
import { callNative, ValidationError } from './errors';
import { describeValue } from './validation';

const MAX_THREADS = 1024;

/** Sets LibTorch's intra-op thread count (`torch.set_num_threads`), applied to every worker thread. */
export function setThreadCount(n: number): void {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_THREADS) {
    throw new ValidationError('n', `setNumThreads: n must be an integer in [1, ${MAX_THREADS}], got ${describeValue(n)}`);
  }
  const addon = loadAddon();
  callNative(() => addon.setNumThreads(n));
}
