// Optimizers for embedding tables trained row-sparse: each step reads and writes only the rows a
// batch touched (and their state), so its cost follows the batch, not the vocabulary.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "adatt/weights_io.h"

namespace adatt {

enum class SparseOptimizerKind {
  Adam,            // "lazy" Adam, PyTorch's SparseAdam: moments of touched rows only, bias correction by step
  Adagrad,         // PyTorch's Adagrad on sparse gradients: one accumulator per element
  RowwiseAdagrad,  // FBGEMM/TorchRec's row-wise Adagrad: one accumulator per row (mean of g^2)
  Sgd,
};

struct SparseOptimizerOptions {
  SparseOptimizerKind kind = SparseOptimizerKind::Adam;
  double lr = 1e-3;
  double weight_decay = 0.0;  // L2, added to the touched rows' gradient (untouched rows do not decay)
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

class SparseOptimizer {
 public:
  SparseOptimizer(std::vector<torch::Tensor> tables, SparseOptimizerOptions options);

  // One step of table `table` on rows `ids` (distinct) with their gradient `grad` [U, dim] at
  // learning rate `lr`. State is allocated at the first step, beside the table.
  void step(size_t table, const torch::Tensor& ids, const torch::Tensor& grad, double lr);

  const SparseOptimizerOptions& options() const { return options_; }
  // State as named tensors under `prefix`; load checks every shape against the tables.
  void save(TensorMap& tensors, const std::string& prefix) const;
  void load(const TensorMap& tensors, const std::string& prefix, const torch::Device& device);

 private:
  struct TableState {
    int64_t steps = 0;
    torch::Tensor first;   // Adam: exp_avg [V, dim]; Adagrad: sum of squares [V, dim]; row-wise: [V]
    torch::Tensor second;  // Adam: exp_avg_sq [V, dim]
  };
  void step_cpu(TableState& state, const torch::Tensor& weight, const torch::Tensor& ids, const torch::Tensor& grad,
                double lr);
  int state_tensors() const;                             // per table: 0, 1 or 2
  std::vector<int64_t> state_shape(size_t table) const;  // [V] row-wise, else the table's shape

  std::vector<torch::Tensor> tables_;
  SparseOptimizerOptions options_;
  std::vector<TableState> state_;
};

}  // namespace adatt
