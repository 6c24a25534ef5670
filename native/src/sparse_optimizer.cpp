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

namespace {

// The CPU update of float tables in one pass over the touched rows: each row of the table and of
// its state is read and written once (the ATen form reads each of them in three or four passes,
// and at millions of rows every pass is a cache miss per row). Same arithmetic as the ATen form.
template <typename Update>
void for_each_row(const torch::Tensor& ids, const torch::Tensor& grad, Update update) {
  const auto* id = ids.data_ptr<int64_t>();
  const auto g = grad.contiguous();
  const auto* values = g.data_ptr<float>();
  const int64_t width = g.size(1);
  at::parallel_for(0, ids.size(0), 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) update(id[i], values + i * width, width);
  });
}

}  // namespace

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
  if (weight.is_cpu() && weight.scalar_type() == torch::kFloat && weight.is_contiguous() &&
      grad.scalar_type() == torch::kFloat) {
    step_cpu(state, weight, ids, grad, lr);
    return;
  }
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
      const double step_size = lr * std::sqrt(1.0 - std::pow(options_.beta2, t)) / (1.0 - std::pow(options_.beta1, t));
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

void SparseOptimizer::step_cpu(TableState& state, const torch::Tensor& weight, const torch::Tensor& ids,
                               const torch::Tensor& grad, double lr) {
  auto* w = weight.data_ptr<float>();
  const int64_t width = weight.size(1);
  const float decay = static_cast<float>(options_.weight_decay);
  // The touched row's gradient with L2 decay added (as the ATen form's `g`).
  const auto decayed = [decay](float g, float w) { return decay != 0.0f ? g + decay * w : g; };
  const float eps = static_cast<float>(options_.eps);
  switch (options_.kind) {
    case SparseOptimizerKind::Adam: {
      auto* m = state.first.data_ptr<float>();
      auto* v = state.second.data_ptr<float>();
      const float beta1 = static_cast<float>(options_.beta1);
      const float beta2 = static_cast<float>(options_.beta2);
      const double t = static_cast<double>(state.steps);
      const float step_size =
          static_cast<float>(lr * std::sqrt(1.0 - std::pow(options_.beta2, t)) / (1.0 - std::pow(options_.beta1, t)));
      for_each_row(ids, grad, [&](int64_t row, const float* g, int64_t n) {
        float* wr = w + row * width;
        float* mr = m + row * width;
        float* vr = v + row * width;
        for (int64_t d = 0; d < n; ++d) {
          const float gd = decayed(g[d], wr[d]);
          mr[d] = (gd - mr[d]) * (1.0f - beta1) + mr[d];
          vr[d] = (gd * gd - vr[d]) * (1.0f - beta2) + vr[d];
          wr[d] += mr[d] / (std::sqrt(vr[d]) + eps) * -step_size;
        }
      });
      break;
    }
    case SparseOptimizerKind::Adagrad: {
      auto* s = state.first.data_ptr<float>();
      const float rate = static_cast<float>(lr);
      for_each_row(ids, grad, [&](int64_t row, const float* g, int64_t n) {
        float* wr = w + row * width;
        float* sr = s + row * width;
        for (int64_t d = 0; d < n; ++d) {
          const float gd = decayed(g[d], wr[d]);
          sr[d] += gd * gd;
          wr[d] += gd / (std::sqrt(sr[d]) + eps) * -rate;
        }
      });
      break;
    }
    case SparseOptimizerKind::RowwiseAdagrad: {
      auto* s = state.first.data_ptr<float>();
      const float rate = static_cast<float>(lr);
      for_each_row(ids, grad, [&](int64_t row, const float* g, int64_t n) {
        float* wr = w + row * width;
        float squares = 0.0f;
        for (int64_t d = 0; d < n; ++d) {
          const float gd = decayed(g[d], wr[d]);
          squares += gd * gd;
        }
        s[row] += squares / static_cast<float>(n);
        const float scale = -rate / (std::sqrt(s[row]) + eps);
        for (int64_t d = 0; d < n; ++d) wr[d] += decayed(g[d], wr[d]) * scale;
      });
      break;
    }
    case SparseOptimizerKind::Sgd: {
      const float rate = static_cast<float>(lr);
      for_each_row(ids, grad, [&](int64_t row, const float* g, int64_t n) {
        float* wr = w + row * width;
        for (int64_t d = 0; d < n; ++d) wr[d] += decayed(g[d], wr[d]) * -rate;
      });
      break;
    }
  }
}

void SparseOptimizer::save(TensorMap& tensors, const std::string& prefix) const {
  for (size_t t = 0; t < state_.size(); ++t) {
    const std::string key = prefix + std::to_string(t) + ".";
    tensors[key + "steps"] = torch::tensor(state_[t].steps, torch::kLong);
    if (state_[t].first.defined()) tensors[key + "first"] = state_[t].first.detach().cpu();
    if (state_[t].second.defined()) tensors[key + "second"] = state_[t].second.detach().cpu();
  }
}

void SparseOptimizer::load(const TensorMap& tensors, const std::string& prefix, const torch::Device& device) {
  std::vector<TableState> loaded(state_.size());
  for (size_t t = 0; t < state_.size(); ++t) {
    const std::string key = prefix + std::to_string(t) + ".";
    const std::string table = "table " + std::to_string(t);
    const auto steps = tensors.find(key + "steps");
    if (steps == tensors.end() || steps->second.numel() != 1 || steps->second.scalar_type() != torch::kLong) {
      throw InvalidArgument("trainer state: the embedding optimizer's state of " + table +
                            " is missing (saved with another embeddingOptimizer?)");
    }
    loaded[t].steps = steps->second.item<int64_t>();
    if (loaded[t].steps < 0) throw InvalidArgument("trainer state: " + table + " has a negative step count");
    torch::Tensor* slots[] = {&loaded[t].first, &loaded[t].second};
    const char* names[] = {"first", "second"};
    for (int k = 0; k < state_tensors(); ++k) {
      const auto value = tensors.find(key + names[k]);
      // A table that never stepped has no state yet.
      if (value == tensors.end()) {
        if (loaded[t].steps == 0) continue;
        throw InvalidArgument("trainer state: the embedding optimizer's state of " + table + " is missing");
      }
      if (value->second.sizes().vec() != state_shape(t) || value->second.scalar_type() != tables_[t].scalar_type()) {
        throw InvalidArgument("trainer state: the embedding optimizer's state of " + table +
                              " does not match the table's shape");
      }
      *slots[k] = value->second.to(device);
    }
  }
  state_ = std::move(loaded);
}

}  // namespace adatt
