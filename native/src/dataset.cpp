#include "adatt/dataset.h"

#include <cmath>

#include "adatt/errors.h"

namespace adatt {
namespace {

std::string row_text(int64_t row) { return "row " + std::to_string(row + 1); }

}  // namespace

Dataset::Dataset(int64_t size, torch::Tensor dense, torch::Tensor categorical,
                 std::vector<MultiValuedColumn> multi_valued, torch::Tensor labels, torch::Tensor sample_weights,
                 torch::Tensor groups)
    : size_(size),
      dense_(std::move(dense)),
      categorical_(std::move(categorical)),
      multi_valued_(std::move(multi_valued)),
      labels_(std::move(labels)),
      sample_weights_(std::move(sample_weights)),
      groups_(std::move(groups)) {
  if (size_ <= 0) throw InvalidArgument("dataset: it has no rows");
  if (dense_.defined() && (dense_.dim() != 2 || dense_.size(0) != size_)) throw InvalidArgument("dataset: dense shape");
  if (categorical_.defined() && (categorical_.dim() != 2 || categorical_.size(0) != size_)) {
    throw InvalidArgument("dataset: categorical shape");
  }
  if (labels_.dim() != 2 || labels_.size(0) != size_) throw InvalidArgument("dataset: labels shape");
  if (groups_.defined() && (groups_.dim() != 1 || groups_.size(0) != size_ || groups_.scalar_type() != torch::kLong)) {
    throw InvalidArgument("dataset: groups needs one int64 group id per row");
  }
  if (sample_weights_.defined()) {
    if (!sample_weights_.sizes().equals(labels_.sizes()))
      throw InvalidArgument("dataset: sampleWeights needs one array per task of one weight per row");
    if (!(sample_weights_.isfinite() & (sample_weights_ >= 0)).all().item<bool>()) {
      throw InvalidArgument("dataset: sample weights must be finite and >= 0");
    }
  }
  for (size_t i = 0; i < multi_valued_.size(); ++i) {
    const auto& column = multi_valued_[i];
    const auto offsets = column.offsets;
    if (offsets.dim() != 1 || offsets.size(0) != size_ + 1 || offsets[0].item<int64_t>() != 0 ||
        offsets[size_].item<int64_t>() != column.indices.size(0) ||
        (offsets.slice(0, 1) < offsets.slice(0, 0, size_)).any().item<bool>()) {
      throw InvalidArgument("dataset: multiValued[" + std::to_string(i) +
                            "] offsets must start at 0, never decrease and end at the number of indices");
    }
  }
}

Batch Dataset::batch(const torch::Tensor& rows) const {
  Batch batch;
  batch.size = rows.size(0);
  if (dense_.defined() && dense_.size(1) > 0) batch.dense = dense_.index_select(0, rows);
  if (categorical_.defined() && categorical_.size(1) > 0) {
    batch.categorical = categorical_.index_select(0, rows).to(torch::kLong);
  }
  const auto* row_ids = rows.data_ptr<int64_t>();
  for (const auto& column : multi_valued_) {
    const auto* offsets = column.offsets.data_ptr<int64_t>();
    const auto* indices = column.indices.data_ptr<int32_t>();
    int64_t total = 0;
    for (int64_t i = 0; i < batch.size; ++i) total += offsets[row_ids[i] + 1] - offsets[row_ids[i]];
    auto bag_indices = torch::empty({total}, torch::kLong);
    auto bag_offsets = torch::empty({batch.size}, torch::kLong);
    auto* out_indices = bag_indices.data_ptr<int64_t>();
    auto* out_offsets = bag_offsets.data_ptr<int64_t>();
    int64_t position = 0;
    for (int64_t i = 0; i < batch.size; ++i) {
      out_offsets[i] = position;
      for (int64_t k = offsets[row_ids[i]]; k < offsets[row_ids[i] + 1]; ++k) out_indices[position++] = indices[k];
    }
    batch.multi_valued.push_back({bag_indices, bag_offsets});
  }
  return batch;
}

Dataset Dataset::subset(const torch::Tensor& rows) const {
  std::vector<MultiValuedColumn> columns;
  const Batch picked = batch(rows);
  for (const auto& bag : picked.multi_valued) {
    auto offsets = torch::cat({bag.offsets, torch::full({1}, bag.indices.size(0), torch::kLong)});
    columns.push_back({bag.indices.to(torch::kInt), offsets});
  }
  return Dataset(rows.size(0), dense_.defined() ? dense_.index_select(0, rows) : torch::Tensor(),
                 categorical_.defined() ? categorical_.index_select(0, rows) : torch::Tensor(), std::move(columns),
                 labels_of(rows), sample_weights_of(rows),
                 groups_.defined() ? groups_.index_select(0, rows) : torch::Tensor());
}

void Dataset::check_features(const ModelConfig& config) const {
  const int64_t dense_dim = dense_.defined() ? dense_.size(1) : 0;
  if (dense_dim != config.dense_dim) {
    throw InvalidArgument("dataset has " + std::to_string(dense_dim) + " dense features, the model expects " +
                          std::to_string(config.dense_dim));
  }
  if (dense_dim > 0) {
    const auto bad = dense_.isfinite().logical_not();
    if (bad.any().item<bool>()) {
      const auto where = bad.nonzero()[0];
      throw InvalidArgument("dataset: dense feature " + std::to_string(where[1].item<int64_t>()) + ", " +
                            row_text(where[0].item<int64_t>()) + ": value is NaN or infinite");
    }
  }
  const int64_t features = categorical_.defined() ? categorical_.size(1) : 0;
  if (features != static_cast<int64_t>(config.categorical.size())) {
    throw InvalidArgument("dataset has " + std::to_string(features) + " categorical features, the model expects " +
                          std::to_string(config.categorical.size()));
  }
  for (int64_t f = 0; f < features; ++f) {
    const auto column = categorical_.select(1, f);
    const auto bad = (column < 0).logical_or(column >= config.categorical[f].vocab);
    if (bad.any().item<bool>()) {
      const int64_t row = bad.nonzero()[0][0].item<int64_t>();
      throw InvalidArgument("dataset: categorical feature " + std::to_string(f) + ", " + row_text(row) + ": id " +
                            std::to_string(column[row].item<int64_t>()) + " is outside the model's vocabulary of " +
                            std::to_string(config.categorical[f].vocab));
    }
  }
  if (multi_valued_.size() != config.multi_valued.size()) {
    throw InvalidArgument("dataset has " + std::to_string(multi_valued_.size()) +
                          " multi-valued features, the model expects " + std::to_string(config.multi_valued.size()));
  }
  for (size_t f = 0; f < multi_valued_.size(); ++f) {
    const auto& indices = multi_valued_[f].indices;
    const auto bad = (indices < 0).logical_or(indices >= config.multi_valued[f].vocab);
    if (bad.any().item<bool>()) {
      const int64_t position = bad.nonzero()[0][0].item<int64_t>();
      const int64_t row = (multi_valued_[f].offsets <= position).sum().item<int64_t>() - 1;
      throw InvalidArgument("dataset: multi-valued feature " + std::to_string(f) + ", " + row_text(row) +
                            ": id outside the model's vocabulary of " + std::to_string(config.multi_valued[f].vocab));
    }
  }
}

void Dataset::check_labels(const std::vector<TaskSpec>& tasks, const std::vector<bool>& regression) const {
  if (num_tasks() != static_cast<int64_t>(tasks.size())) {
    throw InvalidArgument("dataset has labels for " + std::to_string(num_tasks()) + " tasks, the model has " +
                          std::to_string(tasks.size()));
  }
  for (int64_t t = 0; t < num_tasks(); ++t) {
    const auto column = labels_.select(1, t);
    const auto present = column.isnan().logical_not();
    const auto& task = tasks[t];
    torch::Tensor bad;
    std::string expected;
    if (regression[t]) {
      bad = present.logical_and(column.isinf());
      expected = "a finite number";
    } else {
      const int64_t classes = task.outputs == 1 ? 2 : task.outputs;
      bad = present.logical_and((column < 0).logical_or(column >= classes).logical_or(column != column.floor()));
      expected = task.outputs == 1 ? "0 or 1" : "a class index in [0, " + std::to_string(classes) + ")";
    }
    if (bad.any().item<bool>()) {
      const int64_t row = bad.nonzero()[0][0].item<int64_t>();
      throw InvalidArgument("dataset: task '" + task.name + "', " + row_text(row) + ": label " +
                            std::to_string(column[row].item<double>()) + " is not " + expected);
    }
  }
}

size_t Dataset::bytes() const {
  size_t total = labels_.nbytes() + (sample_weights_.defined() ? sample_weights_.nbytes() : 0) +
                 (groups_.defined() ? groups_.nbytes() : 0);
  if (dense_.defined()) total += dense_.nbytes();
  if (categorical_.defined()) total += categorical_.nbytes();
  for (const auto& column : multi_valued_) total += column.indices.nbytes() + column.offsets.nbytes();
  return total;
}

}  // namespace adatt
