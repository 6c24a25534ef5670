#include "adatt/runtime.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// OpenBLAS's thread controls, resolved when the library is loaded if LibTorch's BLAS is OpenBLAS
// (it is in the addon's dependency tree) and null otherwise.
extern "C" {
int openblas_get_parallel(void) __attribute__((weak));
int openblas_get_num_threads(void) __attribute__((weak));
void openblas_set_num_threads(int threads) __attribute__((weak));
char* openblas_get_config(void) __attribute__((weak));
}

namespace adatt {

BlasThreading blas_threading() {
  if (openblas_get_parallel == nullptr) return BlasThreading::Unknown;
  switch (openblas_get_parallel()) {
    case 0: return BlasThreading::Sequential;
    case 1: return BlasThreading::Pthreads;
    case 2: return BlasThreading::OpenMP;
    default: return BlasThreading::Unknown;
  }
}

std::string blas_threading_name(BlasThreading threading) {
  switch (threading) {
    case BlasThreading::Sequential: return "openblas-sequential";
    case BlasThreading::Pthreads: return "openblas-pthreads";
    case BlasThreading::OpenMP: return "openblas-openmp";
    case BlasThreading::Unknown: break;
  }
  return "unknown";
}

int blas_threads() { return openblas_get_num_threads != nullptr ? openblas_get_num_threads() : 0; }

int blas_max_threads() {
  // OpenBLAS reserves a buffer per thread up to the MAX_THREADS it was built with (its config
  // string says which); past that it fails in ways that are not errors (aborts, livelocks).
  if (openblas_get_config == nullptr) return 0;
  const char* config = openblas_get_config();
  const char* found = config != nullptr ? std::strstr(config, "MAX_THREADS=") : nullptr;
  return found != nullptr ? std::atoi(found + std::strlen("MAX_THREADS=")) : 0;
}

ThreadPlan plan_threads(int threads, int intra_op) {
  ThreadPlan plan;
  plan.blas = threads;
  if (intra_op > 0) {
    plan.intra_op = intra_op;
  } else {
    plan.intra_op = blas_threading() == BlasThreading::Pthreads ? 1 : threads;
  }
  return plan;
}

void apply_intra_op_threads(const ThreadPlan& plan) {
  if (at::get_num_threads() != plan.intra_op) at::set_num_threads(plan.intra_op);
}

void apply_blas_threads(const ThreadPlan& plan) {
  if (openblas_set_num_threads != nullptr && blas_threading() != BlasThreading::Sequential) {
    openblas_set_num_threads(plan.blas);
  }
}

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  const bool user_configured = std::getenv("MALLOC_TRIM_THRESHOLD_") != nullptr ||
                               std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr ||
                               (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr);
  if (user_configured) return;
  // Setting either threshold turns off glibc's adaptive mmap threshold, so both are set. Worker
  // threads allocate from 64 MB sub-heaps that are unmapped as soon as they are empty unless the
  // top pad exceeds what is left in the previous one, hence a 64 MB pad.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
}

}  // namespace adatt
