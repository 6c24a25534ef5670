// The compute threads chosen with setNumThreads() (or at load), applied to every worker thread.
#pragma once

#include "adatt/runtime.h"

namespace adatt::binding {

// At addon load: keep LibTorch's and the BLAS's pools from competing (see adatt::plan_threads).
void init_thread_plan();
// setNumThreads(threads[, intraOpThreads]); intra_op 0 = chosen by plan_threads.
void set_thread_count(int threads, int intra_op);
// On the compute thread, before each job: OpenMP counts are per thread.
void apply_thread_count();
ThreadPlan current_thread_plan();

}  // namespace adatt::binding
