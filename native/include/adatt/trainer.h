// The inner training loop (batches of one epoch: forward, loss, backward, optimizer step) and
// batched evaluation. Epoch-level policy (early stopping, checkpoints) lives in TypeScript.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adatt/dataset.h"
#include "adatt/distributed.h"
#include "adatt/metrics.h"
#include "adatt/model.h"
#include "adatt/sparse_optimizer.h"
#include "adatt/task_model.h"

namespace adatt {

enum class OptimizerKind { Adam, AdamW, Adagrad, Sgd };

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::Adam;
  double lr = 1e-3;
  double weight_decay = 0.0;
  double momentum = 0.0;  // sgd
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

// Learning rate at a global step: linear warm-up over `warmup_steps`, then constant, step decay
// (x gamma every `step_size` steps) or cosine decay to `min_lr` at `total_steps`.
enum class ScheduleKind { Constant, Step, Cosine };

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::Constant;
  int64_t warmup_steps = 0;
  int64_t step_size = 1;
  double gamma = 0.1;
  int64_t total_steps = 0;
  double min_lr = 0.0;
};

enum class LossKind { BinaryCrossEntropy, CrossEntropy, MeanSquaredError, Huber };

struct TaskLoss {
  TaskType type = TaskType::Binary;
  LossKind loss = LossKind::BinaryCrossEntropy;
  double weight = 1.0;
  double huber_delta = 1.0;
  // The loss counts only the labelled rows of the task's sample space.
  SampleSpace space;
};

// How the tasks' losses are weighted in the sum that is minimised. Fixed: TaskLoss::weight (times
// the weights set with set_task_weights, e.g. Dynamic Weight Averaging's per epoch). Uncertainty
// (Kendall, Gal and Cipolla, CVPR 2018): a learnable log-variance s_t per task, trained with the
// dense parameters; the task's term is exp(-s_t) L_t + s_t / 2 (classification) or
// exp(-s_t) L_t / 2 + s_t / 2 (regression), times its fixed weight. GradNorm (Chen et al., ICML
// 2018): a learnable weight w_t per task multiplies its fixed weight; each step, G_t = |grad_W of
// the task's term| on the model's last shared layer W, and w takes the gradient of
// sum_t |G_t - mean(G) r_t^alpha| (the target held constant; r_t = (L_t / L_t(0)) over its mean,
// L_t(0) the task's loss at its first labelled batch), stepped by the dense optimizer and then
// renormalised to sum to T.
enum class TaskWeighting { Fixed, Uncertainty, GradNorm };

enum class NonFinitePolicy { Stop, Skip };

struct TrainerOptions {
  OptimizerOptions optimizer;  // the dense parameters (and the tables when embedding_optimizer is unset)
  // Embedding tables trained row-sparse by their own optimizer; its lr follows the schedule in
  // proportion to the dense one's. Unset: tables are dense parameters like any other.
  std::optional<SparseOptimizerOptions> embedding_optimizer;
  ScheduleOptions schedule;
  std::vector<TaskLoss> tasks;
  TaskWeighting weighting = TaskWeighting::Fixed;
  double gradnorm_alpha = 1.5;  // GradNorm's asymmetry
  int64_t batch_size = 256;
  uint64_t seed = 0;
  double clip_norm = 0.0;  // 0: no clipping
  NonFinitePolicy non_finite = NonFinitePolicy::Stop;
  // Every this many steps, measure the tasks' gradient conflict (see GradientConflict); 0: never.
  int64_t conflict_every = 0;
};

// Task-gradient conflict over the measured steps of a pass, as sums (a stream's chunks add up):
// per task, the norm of its term's gradient on the shared parameters — every element of the
// trainable parameters (and the touched embedding rows) that at least two tasks' gradients reach
// in that step — and per pair of tasks the cosine between their gradients there. Tasks without
// labelled rows in a step take no part in it.
struct GradientConflict {
  int64_t steps = 0;
  std::vector<double> norm_sums;     // [T]
  std::vector<int64_t> norm_counts;  // [T]
  std::vector<double> cosine_sums;   // [T * T], row-major
  std::vector<int64_t> cosine_counts;
};

struct StepProgress {
  int64_t epoch = 0;
  int64_t step = 0;     // global optimizer steps so far
  int64_t batch = 0;    // batches done in this epoch
  int64_t batches = 0;  // batches in this epoch
  int64_t examples = 0;
  std::vector<double> loss;  // running mean per task over this epoch
  double examples_per_second = 0.0;
  double lr = 0.0;
};

struct EpochResult {
  int64_t steps = 0;
  int64_t examples = 0;
  int64_t skipped = 0;       // batches skipped for a non-finite loss
  std::vector<double> loss;  // mean per task over the epoch
  double seconds = 0.0;
  bool aborted = false;
  GradientConflict conflict;  // steps == 0 unless TrainerOptions::conflict_every
};

// How one train_epoch call reads its data.
struct EpochPass {
  // Seeds the shuffle with the trainer's seed: an in-memory epoch passes its epoch number, a
  // streamed chunk a key of (epoch, chunk).
  uint64_t shuffle_key = 0;
  // -1: every rank holds the same data and takes its slice of each global batch. Otherwise the
  // data is this rank's own (a streamed chunk) and the pass runs exactly this many steps, agreed by
  // all ranks; a rank whose rows run out takes part with empty batches.
  int64_t own_batches = -1;
  // False for a rank whose stream has ended while others' go on: it trains no rows of `data`.
  bool has_rows = true;
};

// A training run that reached a non-finite loss with NonFinitePolicy::Stop.
class NonFiniteLoss : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One task's loss in a batch: the mean over its labelled rows, how many rows that is, and their
// mass (the rows, or the sum of their sample weights).
struct BatchTaskLoss {
  torch::Tensor loss;
  int64_t count = 0;
  double mass = 0.0;
};

class Trainer {
 public:
  Trainer(std::shared_ptr<TaskModel> model, TrainerOptions options);

  // One pass over `data` in a shuffle seeded by (seed, pass.shuffle_key), so runs are reproducible
  // and resumable. `progress` is called from this thread at most every `progress_interval` seconds
  // and after the last batch (reporting `epoch`); `abort` is checked before every batch.
  EpochResult train_epoch(const Dataset& data, int64_t epoch, const torch::Device& device,
                          const std::function<void(const StepProgress&)>& progress, const std::atomic<bool>& abort,
                          double progress_interval, const EpochPass& pass);

  // Data-parallel training: parameters are broadcast from rank 0 now; each epoch, rank r takes its
  // slice of every global batch (batchSize per rank) and gradients are averaged over the global batch.
  void set_communicator(std::shared_ptr<Communicator> communicator);

  int64_t global_step() const { return step_; }
  // Weights that multiply the tasks' fixed weights from the next step on (Dynamic Weight Averaging).
  void set_task_weights(const std::vector<double>& weights);
  // Each task's weight on its loss now: fixed x set, times exp(-s_t) (or exp(-s_t) / 2) with
  // Uncertainty or w_t with GradNorm.
  std::vector<double> task_weights() const;
  // Optimizer state (moments, step counts) as bytes, and its restore onto `device` with the
  // global step, so a resumed run continues exactly where the saved one stopped.
  std::string save_state() const;
  void load_state(const std::string& bytes, int64_t step, const torch::Device& device);
  double lr_at(int64_t step) const;
  const TrainerOptions& options() const { return options_; }

 private:
  // The task's mean loss over its labelled rows in its sample space (zero when there are none),
  // with their count and mass. `labels` holds every task's labels [B, T]; with sample `weights` [B, T]
  // the mean is weighted, sum(w l) / sum(w), and rows that all weigh 0 count as none.
  BatchTaskLoss task_loss(size_t task, const torch::Tensor& output, const torch::Tensor& labels,
                          const torch::Tensor& weights) const;
  // The term of task t's loss in the minimised sum (see TaskWeighting).
  torch::Tensor weighted_term(size_t task, const torch::Tensor& loss) const;
  // The task's fixed weight times the one set with set_task_weights.
  double fixed_weight(size_t task) const { return options_.tasks[task].weight * set_weights_[task]; }
  // GradNorm's gradient for its task weights from this batch's task losses.
  torch::Tensor gradnorm_gradient(const std::vector<BatchTaskLoss>& losses);
  // Adds this step's gradient conflict of the tasks' terms (undefined for a task without labelled
  // rows) to `conflict`.
  void measure_conflict(const std::vector<torch::Tensor>& terms, const std::vector<TouchedRows>& touched,
                        GradientConflict& conflict);
  // The tables' touched ids and row gradients of this step, summed over ranks when data-parallel
  // (every rank ends with the same rows); rows_per_rank[r][t] is rank r's count of touched rows of
  // table t.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> table_gradients(
      const std::vector<TouchedRows>& touched, const std::vector<std::vector<int64_t>>& rows_per_rank);

  std::shared_ptr<TaskModel> model_;
  TrainerOptions options_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<torch::Tensor> parameters_;  // what optimizer_ steps: all but the row-sparse tables
  std::vector<torch::Tensor> tables_;      // trained row-sparse by sparse_optimizer_
  std::unique_ptr<SparseOptimizer> sparse_optimizer_;
  std::vector<double> set_weights_;     // set_task_weights', 1 until set
  torch::Tensor log_variances_;         // [T], TaskWeighting::Uncertainty only; the last of parameters_
  torch::Tensor gradnorm_weights_;      // [T], TaskWeighting::GradNorm only; the last of parameters_
  std::vector<double> initial_losses_;  // GradNorm's L_t(0), NaN until the task's first labelled batch
  ReferenceEntries shared_layer_;       // GradNorm's W
  std::shared_ptr<Communicator> communicator_;
  int64_t step_ = 0;
};

// Raw tower outputs [N, K] per task over the whole dataset (CPU), in batches, without gradients.
// With a communicator each rank computes a contiguous shard and the outputs are gathered.
std::vector<torch::Tensor> predict_outputs(TaskModel& model, const Dataset& data, int64_t batch_size,
                                           const torch::Device& device, Communicator* communicator = nullptr);

}  // namespace adatt
