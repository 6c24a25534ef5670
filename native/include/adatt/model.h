// A complete multi-task model: input layer (dense + embeddings + bags) -> multi-task part -> towers.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "adatt/architectures.h"
#include "adatt/config.h"
#include "adatt/layers.h"
#include "adatt/task_model.h"

namespace adatt {

struct IdBag {
  torch::Tensor indices;  // [N] long
  torch::Tensor offsets;  // [B] long, EmbeddingBag style
};

struct Batch {
  int64_t size = 0;
  torch::Tensor dense;        // [B, denseDim] float (undefined when denseDim = 0)
  torch::Tensor categorical;  // [B, C] long (undefined when there are no categorical features)
  std::vector<IdBag> multi_valued;

  Batch to(const torch::Device& device) const;
};

enum class WeightLayout { Reference, Native };

// The model's outputs from the towers' (one per task): a conditional task's (TaskSpec::conditional_on)
// becomes the logit of its joint probability with its parent, computed stably in log space.
std::vector<torch::Tensor> joint_outputs(std::vector<torch::Tensor> outputs, const std::vector<TaskSpec>& tasks);

class MultiTaskModelImpl : public torch::nn::Module, public TaskModel {
 public:
  explicit MultiTaskModelImpl(ModelConfig config);

  std::vector<torch::Tensor> forward_tasks(const Batch& batch) override { return forward(batch); }
  std::vector<torch::Tensor> trainable_parameters() override { return parameters(); }
  std::vector<torch::Tensor> embedding_tables() override;
  std::vector<torch::Tensor> forward_touched(const Batch& batch, std::vector<TouchedRows>& touched) override;
  ReferenceEntries shared_layer() const override;
  // Reads only when the mode is already right: reads of a model may run on several threads at once
  // (the trainer, the only one to switch it on, switches it off again at the end of its pass).
  void set_training(bool on) override {
    if (is_training() != on) train(on);
  }
  const std::vector<TaskSpec>& task_specs() const override { return config_.tasks; }
  void check_dataset(const Dataset& data, const std::vector<bool>& regression) const override;

  // Per task, the tower output [B, outputs] (logits for classification).
  std::vector<torch::Tensor> forward(const Batch& batch);
  // Per fusion level, the batch mean of the gate matrix: [G, E].
  std::vector<torch::Tensor> gate_weights(const Batch& batch);
  // The multi-task part's gates and expert outputs on `batch` (towers are not run).
  ArchProbe probe(const Batch& batch);

  const ModelConfig& config() const { return config_; }
  // Checks shapes and id ranges of a CPU batch against this model's inputs (cheap, before any kernel
  // that would index out of range runs, notably on CUDA where that is a device-side assert).
  void check_batch(const Batch& batch) const;

  ReferenceEntries reference_entries() const;
  // Copies of the weights (or, with `gradients`, of their .grad()) in the chosen layout, on the CPU.
  std::map<std::string, torch::Tensor> export_tensors(WeightLayout layout, bool gradients = false) const;
  // d(sum_t <output_t, seeds[t]>)/dθ, a vector-Jacobian product, in the reference layout on the CPU;
  // seeds[t] holds batch size x outputs values of task t. Batch and seeds on the model's device; no
  // gradient is left behind.
  std::map<std::string, torch::Tensor> seeded_gradients(const Batch& batch, const std::vector<torch::Tensor>& seeds);
  // Loads tensors of either layout (detected from the names); strict: every weight must be given and
  // no unknown name may appear. All shapes are checked before anything is written.
  void import_tensors(const std::map<std::string, torch::Tensor>& tensors, bool strict);
  int64_t parameter_count() const;

 private:
  // The input vector; with `touched`, tables are read through the rows the batch touches.
  torch::Tensor embed(const Batch& batch, std::vector<TouchedRows>* touched = nullptr);
  torch::Tensor towers(const torch::Tensor& representation);

  ModelConfig config_;
  std::vector<torch::Tensor> embeddings_;
  std::vector<torch::Tensor> bag_embeddings_;
  std::shared_ptr<MultiTaskArch> arch_;
  GroupedMLP tower_mlp_{nullptr};
  RaggedLinear tower_out_{nullptr};
};
TORCH_MODULE(MultiTaskModel);

}  // namespace adatt
