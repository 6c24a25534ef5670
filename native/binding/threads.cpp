#include "threads.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>

namespace adatt::binding {
namespace {

std::atomic<int> planned_intra_op{0};  // 0 until init_thread_plan
std::atomic<int> planned_blas{0};

void store_and_apply(const ThreadPlan& plan) {
  planned_intra_op = plan.intra_op;
  planned_blas = plan.blas;
  apply_blas_threads(plan);
  apply_intra_op_threads(plan);
}

}  // namespace

void init_thread_plan() {
  if (planned_intra_op.load() > 0) return;  // another environment (worker_threads) got here first
  // Start from the counts the environment chose (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, core count).
  store_and_apply(plan_threads(std::max(blas_threads(), at::get_num_threads())));
}

void set_thread_count(int threads, int intra_op) { store_and_apply(plan_threads(threads, intra_op)); }

void apply_thread_count() {
  const int intra_op = planned_intra_op.load();
  if (intra_op > 0) apply_intra_op_threads({intra_op, planned_blas.load()});
}

ThreadPlan current_thread_plan() { return {planned_intra_op.load(), planned_blas.load()}; }

}  // namespace adatt::binding
