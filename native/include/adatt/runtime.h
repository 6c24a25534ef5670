// Process-wide compute settings: how many threads LibTorch and its BLAS use, and how freed tensor
// memory is kept for reuse. Pure LibTorch / libc; the binding calls these.
#pragma once

#include <string>

namespace adatt {

// How the BLAS that LibTorch calls for GEMMs runs its threads.
enum class BlasThreading { Unknown, Sequential, Pthreads, OpenMP };

BlasThreading blas_threading();
std::string blas_threading_name(BlasThreading threading);
// The BLAS's own thread count, or 0 when it cannot be asked (not OpenBLAS).
int blas_threads();
// The most threads the BLAS was built for (OpenBLAS's MAX_THREADS), or 0 when it cannot be told.
int blas_max_threads();

struct ThreadPlan {
  int intra_op = 1;  // LibTorch's OpenMP pool (elementwise kernels, our fusion kernels)
  int blas = 1;      // the BLAS's pool (every GEMM)
};

// The pools for `threads` cores. With OpenBLAS's pthread build (Debian's default) the two pools are
// separate, and OpenMP workers spinning between kernels take the cores OpenBLAS's threads need
// (a training step ran 3x slower with both at 2 threads); GEMMs are most of the work, so OpenBLAS
// gets the threads and LibTorch's pool one, unless `intra_op` (> 0) says otherwise. Other BLAS
// builds share LibTorch's OpenMP pool and get `threads` for both.
ThreadPlan plan_threads(int threads, int intra_op = 0);
// OpenMP thread counts are per calling thread: apply on every thread that runs LibTorch work.
void apply_intra_op_threads(const ThreadPlan& plan);
// The BLAS's count is process-wide.
void apply_blas_threads(const ThreadPlan& plan);

// glibc's malloc hands freed memory back to the kernel (trimmed heap tops, unmapped worker-thread
// sub-heaps, large blocks as fresh mmaps), so every training step paid page faults for the same
// buffers again (a third of the step at T = 8). Keep up to 256 MB of freed memory and serve blocks
// under 32 MB from the heap, unless the user configured malloc through the environment. No-op
// elsewhere.
void keep_freed_memory_for_reuse();

}  // namespace adatt
