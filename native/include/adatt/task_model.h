// What the trainer and evaluation drive: any model mapping a batch to one output per task — our
// native models and TorchScript modules loaded from PyTorch alike.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <vector>

#include "adatt/config.h"
#include "adatt/embedding.h"
#include "adatt/errors.h"
#include "adatt/layers.h"

namespace adatt {

struct Batch;
class Dataset;

class TaskModel {
 public:
  virtual ~TaskModel() = default;
  // Per task, the raw output [B, outputs] (logits for classification).
  virtual std::vector<torch::Tensor> forward_tasks(const Batch& batch) = 0;
  virtual std::vector<torch::Tensor> trainable_parameters() = 0;
  // The embedding tables among trainable_parameters() that the trainer may train row-sparse, in
  // lookup order (categorical features, then multi-valued); none unless the model knows them.
  virtual std::vector<torch::Tensor> embedding_tables() { return {}; }
  // forward_tasks, but every table is read through the rows the batch touches: one entry per
  // table of embedding_tables(), whose `rows` receive the tables' gradients in backward.
  virtual std::vector<torch::Tensor> forward_touched(const Batch& batch, std::vector<TouchedRows>& touched) {
    (void)batch;
    (void)touched;
    throw InvalidArgument("this model has no embedding tables to train row-sparse");
  }
  // GradNorm's last shared layer (see MultiTaskArch::shared_layer_entries); empty when the model
  // names none (TorchScript modules, single-task models).
  virtual ReferenceEntries shared_layer() const { return {}; }
  virtual void set_training(bool on) = 0;
  virtual const std::vector<TaskSpec>& task_specs() const = 0;
  // Throws InvalidArgument naming feature, task and row unless `data` fits this model.
  virtual void check_dataset(const Dataset& data, const std::vector<bool>& regression) const = 0;
  // Whether evaluation may run under c10::InferenceMode. TorchScript modules may not: the graph
  // executor keeps tensors made during a run in its cached plans, and inference tensors among them
  // break the next training step ("Inference tensors cannot be saved for backward").
  virtual bool allows_inference_mode() const { return true; }
};

// No autograd while evaluating a model: NoGradGuard, and InferenceMode too where the model allows it
// (cheaper: no version counters or view tracking).
class EvaluationGuard {
 public:
  explicit EvaluationGuard(const TaskModel& model) {
    if (model.allows_inference_mode()) inference_.emplace();
  }

 private:
  torch::NoGradGuard no_grad_;
  std::optional<c10::InferenceMode> inference_;
};

}  // namespace adatt
