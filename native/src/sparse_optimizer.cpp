#include "adatt/sparse_optimizer.h"

#include <cmath>

#include "adatt/errors.h"

namespace adatt {

SparseOptimizer::SparseOptimizer(std::vector<torch::Tensor> tables, SparseOptimizerOptions options)
    : tables_(std::move(tables)), options_(options), state_(tables_.size()) {}

int SparseOptimizer::state_tensors() const {
  switch (options_.kind) {
    case SparseOptimizerKind::Adam: return 2;
    case SparseOptimizerKind::Adagrad:
    case SparseOptimizerKind::RowwiseAdagrad: return 1;
    case SparseOptimizerKind::Sgd: return 0;
  }
  return 0;
}

std::vector<int64_t> SparseOptimizer::state_shape(size_t table) const {
  const auto& weight = tables_[table];
  if (options_.kind == SparseOptimizerKind::RowwiseAdagrad) return {weight.size(0)};
  return weight.sizes().vec();
}

void SparseOptimizer::step(size_t table, const torch::Tensor& ids, const torch::Tensor& grad, double lr) {
  torch::NoGradGuard no_grad;
  auto& state = state_.at(table);
  auto weight = tables_[table];
  if (state_tensors() > 0 && !state.first.defined()) {
    state.first = torch::zeros(state_shape(table), weight.options());
    if (state_tensors() > 1) state.second = torch::zeros(state_shape(table), weight.options());
  }
  ++state.steps;
  if (ids.numel() == 0) return;
  auto g = options_.weight_decay != 0.0 ? grad + options_.weight_decay * weight.index_select(0, ids) : grad;
  switch (options_.kind) {
    case SparseOptimizerKind::Adam: {
      // As torch.optim.SparseAdam: the moments move towards g by (1 - beta), bias correction uses the step count.
      const auto old_first = state.first.index_select(0, ids);
      const auto old_second = state.second.index_select(0, ids);
      const auto first = (g - old_first).mul_(1.0 - options_.beta1).add_(old_first);
      const auto second = (g * g).sub_(old_second).mul_(1.0 - options_.beta2).add_(old_second);
      state.first.index_copy_(0, ids, first);
      state.second.index_copy_(0, ids, second);
      const double t = static_cast<double>(state.steps);
      const double step_size =
          lr * std::sqrt(1.0 - std::pow(options_.beta2, t)) / (1.0 - std::pow(options_.beta1, t));
      weight.index_add_(0, ids, first.div(second.sqrt().add_(options_.eps)).mul_(-step_size));
      break;
    }
    case SparseOptimizerKind::Adagrad: {
      const auto sum = state.first.index_select(0, ids).add_(g * g);
      state.first.index_copy_(0, ids, sum);
      weight.index_add_(0, ids, g / sum.sqrt().add_(options_.eps), -lr);
      break;
    }
    case SparseOptimizerKind::RowwiseAdagrad: {
      const auto sum = state.first.index_select(0, ids).add_((g * g).mean(1));
      state.first.index_copy_(0, ids, sum);
      weight.index_add_(0, ids, g / sum.sqrt().add_(options_.eps).unsqueeze(1), -lr);
      break;
    }
    case SparseOptimizerKind::Sgd: weight.index_add_(0, ids, g, -lr); break;
  }
}

void SparseOptimizer::save(torch::serialize::OutputArchive& archive, const std::string& prefix) const {
  for (size_t t = 0; t < state_.size(); ++t) {
    const std::string key = prefix + std::to_string(t) + ".";
    archive.write(key + "steps", torch::tensor(state_[t].steps, torch::kLong));
    if (state_[t].first.defined()) archive.write(key + "first", state_[t].first);
    if (state_[t].second.defined()) archive.write(key + "second", state_[t].second);
  }
}

void SparseOptimizer::load(torch::serialize::InputArchive& archive, const std::string& prefix,
                           const torch::Device& device) {
  std::vector<TableState> loaded(state_.size());
  for (size_t t = 0; t < state_.size(); ++t) {
    const std::string key = prefix + std::to_string(t) + ".";
    const std::string table = "table " + std::to_string(t);
    torch::Tensor steps;
    if (!archive.try_read(key + "steps", steps) || steps.numel() != 1 || steps.scalar_type() != torch::kLong) {
      throw InvalidArgument("trainer state: the embedding optimizer's state of " + table +
                            " is missing (saved with another embeddingOptimizer?)");
    }
    loaded[t].steps = steps.item<int64_t>();
    if (loaded[t].steps < 0) throw InvalidArgument("trainer state: " + table + " has a negative step count");
    torch::Tensor* slots[] = {&loaded[t].first, &loaded[t].second};
    const char* names[] = {"first", "second"};
    for (int k = 0; k < state_tensors(); ++k) {
      torch::Tensor value;
      // A table that never stepped has no state yet.
      if (!archive.try_read(key + names[k], value)) {
        if (loaded[t].steps == 0) continue;
        throw InvalidArgument("trainer state: the embedding optimizer's state of " + table + " is missing");
      }
      if (value.sizes().vec() != state_shape(t) || value.scalar_type() != tables_[t].scalar_type()) {
        throw InvalidArgument("trainer state: the embedding optimizer's state of " + table +
                              " does not match the table's shape");
      }
      *slots[k] = value.to(device);
    }
  }
  state_ = std::move(loaded);
}

}  // namespace adatt
