// A tabular dataset held as tensors, one copy, and the batches cut from it.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "adatt/config.h"
#include "adatt/model.h"

namespace adatt {

struct MultiValuedColumn {
  torch::Tensor indices;  // [total] int32
  torch::Tensor offsets;  // [N + 1] int64: row r holds indices[offsets[r] .. offsets[r + 1])
};

class Dataset {
 public:
  // sample_weights: [N, T] float, finite and >= 0, or undefined (every row weighs 1); groups: [N]
  // int64 group ids for grouped AUC, or undefined.
  Dataset(int64_t size, torch::Tensor dense, torch::Tensor categorical, std::vector<MultiValuedColumn> multi_valued,
          torch::Tensor labels, torch::Tensor sample_weights = {}, torch::Tensor groups = {});

  int64_t size() const { return size_; }
  int64_t num_tasks() const { return labels_.size(1); }
  const torch::Tensor& labels() const { return labels_; }  // [N, T] float, NaN = missing

  // Rows `rows` (int64) as a model batch (CPU) and their labels [b, T].
  Batch batch(const torch::Tensor& rows) const;
  torch::Tensor labels_of(const torch::Tensor& rows) const { return labels_.index_select(0, rows); }
  // [N, T] per-row weights of each task's loss and metrics; undefined when every row weighs 1.
  const torch::Tensor& sample_weights() const { return sample_weights_; }
  torch::Tensor sample_weights_of(const torch::Tensor& rows) const {
    return sample_weights_.defined() ? sample_weights_.index_select(0, rows) : torch::Tensor();
  }
  // [N] int64 group of each row (grouped AUC); undefined when the data has none.
  const torch::Tensor& groups() const { return groups_; }
  Dataset subset(const torch::Tensor& rows) const;

  // Throws InvalidArgument (naming feature and row) unless the features fit `config`: widths,
  // finite dense values, ids inside the vocabularies.
  void check_features(const ModelConfig& config) const;
  // Throws InvalidArgument (naming task and row) unless every label is valid for its task:
  // binary 0/1, multiclass 0..K-1, regression finite (NaN = missing is always allowed).
  void check_labels(const std::vector<TaskSpec>& tasks, const std::vector<bool>& regression) const;
  const torch::Tensor& dense() const { return dense_; }
  const torch::Tensor& categorical() const { return categorical_; }

  size_t bytes() const;

 private:
  int64_t size_;
  torch::Tensor dense_;        // [N, D] float or undefined
  torch::Tensor categorical_;  // [N, C] int32 or undefined
  std::vector<MultiValuedColumn> multi_valued_;
  torch::Tensor labels_;
  torch::Tensor sample_weights_;
  torch::Tensor groups_;
};

}  // namespace adatt
