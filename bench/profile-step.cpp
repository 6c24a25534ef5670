// Where a training step's time goes: trains a model of the benchmark's shape with the native trainer
// (no Node, no N-API) and prints the self time of every ATen operator and autograd node per step
// (with --predict 1: per batch of predict_outputs, the inference path).
//
//   cmake --build build --target adatt_profile          (after npm run build:native)
//   build/adatt_profile [--kind adatt-sp] [--tasks 3] [--experts 2] [--batch 1024] [--threads 2] [--steps 32]
//                       [--shapes 1] [--profile 0] [--predict 1]
// --shapes 1 keys the table by operator and input shapes; --profile 0 only times the steps.
//
// Self time: an operator's wall time minus that of the operators it called, summed per name and
// divided by the number of profiled steps. Timed through RecordFunction callbacks, which exist
// unchanged in LibTorch 1.13 and 2.x.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "adatt/config.h"
#include "adatt/dataset.h"
#include "adatt/model.h"
#include "adatt/runtime.h"
#include "adatt/trainer.h"

namespace {

using Clock = std::chrono::steady_clock;

struct OpTotals {
  int64_t calls = 0;
  double self_seconds = 0;
  double total_seconds = 0;
};

struct Frame {
  Clock::time_point start;
  double child_seconds = 0;
  std::string shapes;  // with --shapes: the input shapes, so that calls of one operator are told apart
};

// Only the thread that drives training is profiled (intra-op worker threads run no operators of
// their own), so plain thread-locals and one map suffice.
thread_local std::vector<Frame> frames;
std::map<std::string, OpTotals> totals;
bool recording = false;
bool with_shapes = false;

std::string input_shapes(const at::RecordFunction& fn) {
  std::string text;
  for (const auto& input : fn.inputs()) {
    if (!input.isTensor()) continue;
    const auto& tensor = input.toTensor();
    text += text.empty() ? " [" : " x [";
    if (tensor.defined()) {
      for (int64_t d = 0; d < tensor.dim(); ++d) text += (d ? "," : "") + std::to_string(tensor.size(d));
    }
    text += "]";
  }
  return text;
}

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
  frames.push_back({Clock::now(), 0, with_shapes && recording ? input_shapes(fn) : std::string()});
  return nullptr;
}

void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  if (frames.empty()) return;
  const Frame frame = frames.back();
  frames.pop_back();
  const double seconds = std::chrono::duration<double>(Clock::now() - frame.start).count();
  if (!frames.empty()) frames.back().child_seconds += seconds;
  if (!recording) return;
  auto& entry = totals[std::string(fn.name()) + frame.shapes];
  entry.calls += 1;
  entry.total_seconds += seconds;
  entry.self_seconds += seconds - frame.child_seconds;
}

std::string text_flag(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

int64_t flag(int argc, char** argv, const char* name, int64_t fallback) {
  return std::stoll(text_flag(argc, argv, name, std::to_string(fallback)));
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t tasks = flag(argc, argv, "--tasks", 3);
  const int64_t experts = flag(argc, argv, "--experts", 2);
  const int64_t batch = flag(argc, argv, "--batch", 1024);
  const int64_t threads = flag(argc, argv, "--threads", 2);
  const int64_t steps = flag(argc, argv, "--steps", 32);
  const int64_t width = 128;
  // The addon's runtime settings: thread pools planned for the BLAS, freed memory kept for reuse.
  adatt::keep_freed_memory_for_reuse();
  const auto plan = adatt::plan_threads(static_cast<int>(threads));
  adatt::apply_blas_threads(plan);
  adatt::apply_intra_op_threads(plan);

  adatt::ModelConfig config;
  config.kind = adatt::parse_model_kind(text_flag(argc, argv, "--kind", "adatt-sp"));
  config.dense_dim = width;
  for (int64_t t = 0; t < tasks; ++t) config.tasks.push_back({"task" + std::to_string(t), 1});
  config.expert_dims = {{256}, {128}};
  config.tower_dims = {64};
  config.experts_per_task.assign(static_cast<size_t>(tasks), experts);
  config.shared_experts = config.kind == adatt::ModelKind::MMoE ? tasks * experts : experts;
  config.gate_dims.assign(config.expert_dims.size(), {});
  config.validate();
  auto model = std::make_shared<adatt::MultiTaskModelImpl>(config);

  const int64_t size = batch * steps;
  torch::manual_seed(1);
  const auto dense = torch::randn({size, width});
  const auto labels = (dense.narrow(1, 0, tasks) > 0).to(torch::kFloat);
  const adatt::Dataset data(size, dense, torch::Tensor(), {}, labels);

  adatt::TrainerOptions options;
  options.batch_size = batch;
  options.tasks.assign(static_cast<size_t>(tasks), adatt::TaskLoss{});
  adatt::Trainer trainer(model, options);
  std::atomic<bool> abort{false};

  with_shapes = flag(argc, argv, "--shapes", 0) != 0;
  if (flag(argc, argv, "--profile", 1) != 0) {
    at::addGlobalCallback(at::RecordFunctionCallback(on_enter, on_exit).needsInputs(with_shapes));
  }
  const bool inference = flag(argc, argv, "--predict", 0) != 0;
  trainer.train_epoch(data, 0, torch::kCPU, nullptr, abort, 1.0, {0});  // warm-up: allocator, OpenBLAS buffers
  if (inference) adatt::predict_outputs(*model, data, batch, torch::kCPU);
  recording = true;
  const auto start = Clock::now();
  adatt::EpochResult result;
  if (inference) {
    adatt::predict_outputs(*model, data, batch, torch::kCPU);
    result.steps = steps;
    result.examples = size;
  } else {
    result = trainer.train_epoch(data, 1, torch::kCPU, nullptr, abort, 1.0, {1});
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  recording = false;

  std::vector<std::pair<std::string, OpTotals>> rows(totals.begin(), totals.end());
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.self_seconds > b.second.self_seconds; });
  const double per_step = 1000.0 / static_cast<double>(result.steps);
  double profiled = 0;
  for (const auto& row : rows) profiled += row.second.self_seconds;
  std::printf(
      "%s%s, T=%lld, m=%lld, batch %lld, %lld threads (%d intra-op, %d BLAS): %.2f ms per step "
      "(%.0f examples/s), %.2f ms in operators\n",
      inference ? "predict: " : "", adatt::model_kind_name(config.kind), static_cast<long long>(tasks),
      static_cast<long long>(experts), static_cast<long long>(batch), static_cast<long long>(threads), plan.intra_op,
      plan.blas, seconds * per_step, static_cast<double>(result.examples) / seconds, profiled * per_step);
  std::printf("%10s %10s %8s  %s\n", "self ms", "total ms", "calls", "operator (per step)");
  for (const auto& [name, op] : rows) {
    if (op.self_seconds * per_step < 0.01) break;
    std::printf("%10.3f %10.3f %8.1f  %s\n", op.self_seconds * per_step, op.total_seconds * per_step,
                static_cast<double>(op.calls) / static_cast<double>(result.steps), name.c_str());
  }
  return 0;
}
