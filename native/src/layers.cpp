#include "adatt/layers.h"

#include <cmath>
#include <numeric>

#include "adatt/errors.h"
#include "adatt/init.h"

namespace adatt {

UnitRouting::UnitRouting(const std::vector<int64_t>& module_of, torch::nn::Module& owner) : module_of_(module_of) {
  const auto units = static_cast<int64_t>(module_of_.size());
  if (units == 0) return;
  const int64_t modules = module_of_.back() + 1;
  const int64_t group = units % modules == 0 ? units / modules : 0;
  bool grouped = group > 0;
  for (int64_t u = 0; u < units && grouped; ++u) grouped = module_of_[u] == u / group;
  if (grouped) {
    group_size_ = group;
  } else {
    gather_index_ = owner.register_buffer("input_index", torch::tensor(module_of_, torch::kLong));
  }
}

int64_t UnitRouting::module_of(int64_t unit) const {
  return module_of_.empty() ? unit : module_of_[static_cast<size_t>(unit)];
}

torch::Tensor UnitRouting::modules_read(const torch::Tensor& input, int64_t units) const {
  const int64_t modules = units / group_size_;
  return input.size(1) == modules ? input : input.narrow(1, 0, modules);
}

torch::Tensor grouped_linear(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias,
                             const UnitRouting& routing, bool relu) {
  const int64_t units = weight.size(0);
  const int64_t out = weight.size(1);
  const int64_t in = weight.size(2);
  const int64_t batch = input.size(0);
  // ReLU in place on the GEMM's own result: no extra buffer, and views of it stay plain views.
  auto activate = [relu](torch::Tensor y) { return relu ? y.relu_() : y; };
  if (batch == 1) {
    // One example (serving): matrix-vector products. A one-row GEMM still packs the whole weight
    // matrix, which at this size costs more than the arithmetic; GEMV reads it once. Units that read
    // the same module go in one product (their weights are consecutive rows).
    const auto rows = weight.reshape({units * out, in});
    const auto flat_bias = bias.reshape({units * out});
    const int64_t group = input.dim() == 2 ? units : routing.group_size();
    std::vector<torch::Tensor> parts;
    for (int64_t first = 0; first < units; first += group) {
      const auto x = input.dim() == 2 ? input[0] : input[0][routing.module_of(first)];
      parts.push_back(
          torch::addmv(flat_bias.narrow(0, first * out, group * out), rows.narrow(0, first * out, group * out), x));
    }
    return activate(parts.size() == 1 ? parts.front() : torch::cat(parts)).view({1, units, out});
  }
  if (input.dim() == 2) {
    // Every unit reads the same rows: one GEMM against all units' weights side by side.
    return activate(torch::addmm(bias.reshape({units * out}), input, weight.reshape({units * out, in}).t()))
        .view({batch, units, out});
  }
  if (routing.gather_index().defined()) {
    const auto per_unit = input.transpose(0, 1).index_select(0, routing.gather_index());  // [N, B, D]
    return activate(torch::baddbmm(bias.unsqueeze(1), per_unit, weight.transpose(1, 2))).transpose(0, 1);
  }
  const int64_t group = routing.group_size();
  const int64_t modules = units / group;
  const auto per_module = routing.modules_read(input, units).transpose(0, 1);  // [K, B, D], a view
  if (group == 1)
    return activate(torch::baddbmm(bias.unsqueeze(1), per_module, weight.transpose(1, 2))).transpose(0, 1);
  // One GEMM per module against its group's weights side by side, then one copy into [B, N, out].
  const auto y = activate(torch::baddbmm(bias.view({modules, 1, group * out}), per_module,
                                         weight.view({modules, group * out, in}).transpose(1, 2)));
  return y.view({modules, batch, group, out}).permute({1, 0, 2, 3}).reshape({batch, units, out});
}

void init_linear_(torch::Tensor& weight, torch::Tensor& bias, int64_t fan_in) {
  // nn.Linear: kaiming_uniform(a=sqrt(5)) for the weight and U(±1/sqrt(fan_in)) for the bias,
  // both of which come to U(±1/sqrt(fan_in)).
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  init_uniform_(weight, bound);
  init_uniform_(bias, bound);
}

GroupedMLPImpl::GroupedMLPImpl(int64_t units, int64_t input_dim, std::vector<int64_t> widths,
                               const std::vector<int64_t>& input_module)
    : units_(units), input_dim_(input_dim), widths_(std::move(widths)), routing_(input_module, *this) {
  int64_t fan_in = input_dim_;
  for (size_t k = 0; k < widths_.size(); ++k) {
    auto weight = torch::empty({units_, widths_[k], fan_in});
    auto bias = torch::empty({units_, widths_[k]});
    init_linear_(weight, bias, fan_in);
    weights_.push_back(register_parameter("weight" + std::to_string(k), weight));
    biases_.push_back(register_parameter("bias" + std::to_string(k), bias));
    fan_in = widths_[k];
  }
}

torch::Tensor GroupedMLPImpl::forward(const torch::Tensor& input) {
  if (widths_.empty()) {
    // An MLP without layers is the identity; give every unit its own view of its input.
    if (input.dim() == 2) return input.unsqueeze(1).expand({input.size(0), units_, input.size(1)});
    if (routing_.gather_index().defined()) return input.index_select(1, routing_.gather_index());
    const auto modules = routing_.modules_read(input, units_);
    const int64_t group = routing_.group_size();
    if (group == 1) return modules;
    const int64_t batch = input.size(0), width = input.size(2);
    return modules.unsqueeze(2).expand({batch, modules.size(1), group, width}).reshape({batch, units_, width});
  }
  torch::Tensor hidden = input;
  for (size_t k = 0; k < weights_.size(); ++k) {
    // Only the first layer reads modules; deeper layers read their own unit's rows.
    hidden = grouped_linear(hidden, weights_[k], biases_[k], k == 0 ? routing_ : UnitRouting(), true);
  }
  return hidden;
}

void GroupedMLPImpl::reference_entries(const std::function<std::string(int64_t)>& prefix, ReferenceEntries& out) const {
  for (int64_t unit = 0; unit < units_; ++unit) {
    for (size_t k = 0; k < weights_.size(); ++k) {
      const std::string layer = prefix(unit) + "mlp_net." + std::to_string(2 * k) + ".";
      auto pick = [unit](const torch::Tensor& t) { return t.select(0, unit); };
      out.push_back({layer + "weight", weights_[k], pick});
      out.push_back({layer + "bias", biases_[k], pick});
    }
  }
}

void GroupedMLPImpl::last_weight_entries(const std::function<std::string(int64_t)>& prefix, int64_t first,
                                         int64_t count, ReferenceEntries& out) const {
  if (weights_.empty()) return;
  const std::string layer = "mlp_net." + std::to_string(2 * (weights_.size() - 1)) + ".weight";
  for (int64_t unit = first; unit < first + count; ++unit) {
    out.push_back(
        {prefix(unit) + layer, weights_.back(), [unit](const torch::Tensor& t) { return t.select(0, unit); }});
  }
}

RaggedLinearImpl::RaggedLinearImpl(int64_t input_dim, std::vector<int64_t> output_dims,
                                   const std::vector<int64_t>& input_module)
    : input_dim_(input_dim), output_dims_(std::move(output_dims)), routing_(input_module, *this) {
  int64_t total = 0;
  for (int64_t dim : output_dims_) {
    offsets_.push_back(total);
    total += dim;
  }
  weight_ = torch::empty({total, input_dim_});
  bias_ = torch::empty({total});
  // Each unit is its own nn.Linear: same fan-in, so one draw over the concatenation is equivalent.
  init_linear_(weight_, bias_, input_dim_);
  register_parameter("weight", weight_);
  register_parameter("bias", bias_);
}

bool RaggedLinearImpl::uniform() const {
  return std::all_of(output_dims_.begin(), output_dims_.end(),
                     [&](int64_t dim) { return dim == output_dims_.front(); });
}

torch::Tensor RaggedLinearImpl::forward_stacked(const torch::Tensor& input) {
  if (!uniform()) throw InvalidArgument("forward_stacked needs units of one width");
  const auto units = static_cast<int64_t>(output_dims_.size());
  const int64_t out = output_dims_.front();
  return grouped_linear(input, weight_.view({units, out, input_dim_}), bias_.view({units, out}), routing_, false);
}

std::vector<torch::Tensor> RaggedLinearImpl::forward(const torch::Tensor& input) {
  if (uniform()) return forward_stacked(input).unbind(1);
  const auto units = static_cast<int64_t>(output_dims_.size());
  std::vector<torch::Tensor> outputs;
  outputs.reserve(output_dims_.size());
  for (int64_t unit = 0; unit < units; ++unit) {
    const auto rows = input.dim() == 2 ? input : input.select(1, routing_.module_of(unit));
    outputs.push_back(torch::addmm(bias_.narrow(0, offsets_[unit], output_dims_[unit]), rows,
                                   weight_.narrow(0, offsets_[unit], output_dims_[unit]).t()));
  }
  return outputs;
}

void RaggedLinearImpl::reference_entries(const std::function<std::string(int64_t)>& prefix,
                                         ReferenceEntries& out) const {
  for (size_t unit = 0; unit < output_dims_.size(); ++unit) {
    const int64_t offset = offsets_[unit];
    const int64_t rows = output_dims_[unit];
    auto pick = [offset, rows](const torch::Tensor& t) { return t.narrow(0, offset, rows); };
    out.push_back({prefix(static_cast<int64_t>(unit)) + "weight", weight_, pick});
    out.push_back({prefix(static_cast<int64_t>(unit)) + "bias", bias_, pick});
  }
}

torch::Tensor softmax_over_experts(const torch::Tensor& logits) {
  // The row maximum only guards exp() against overflow and cancels out of the result, so it needs no
  // gradient of its own.
  const auto exponentials = (logits - std::get<0>(logits.max(-1, true)).detach()).exp();
  return exponentials / exponentials.sum(-1, true);
}

GateBankImpl::GateBankImpl(int64_t input_dim, GateSpec spec) : spec_(std::move(spec)) {
  const auto gates = static_cast<int64_t>(spec_.selected.size());
  std::vector<int64_t> sizes;
  for (const auto& selected : spec_.selected) {
    sizes.push_back(selected.empty() ? spec_.num_experts : static_cast<int64_t>(selected.size()));
  }
  int64_t output_input_dim = input_dim;
  if (!spec_.hidden.empty()) {
    hidden_ = register_module("hidden", GroupedMLP(gates, input_dim, spec_.hidden, spec_.input_module));
    output_input_dim = spec_.hidden.back();
  }
  // Behind a gate MLP the output layer reads one row per gate; without one it reads the modules.
  output_ = register_module(
      "output", RaggedLinear(output_input_dim, sizes, hidden_ ? std::vector<int64_t>() : spec_.input_module));
  selects_all_ = std::all_of(spec_.selected.begin(), spec_.selected.end(),
                             [](const std::vector<int64_t>& s) { return s.empty(); });
  for (size_t g = 0; g < spec_.selected.size(); ++g) {
    selected_index_.push_back(
        spec_.selected[g].empty()
            ? torch::Tensor()
            : register_buffer("selected" + std::to_string(g), torch::tensor(spec_.selected[g], torch::kLong)));
  }
}

torch::Tensor GateBankImpl::forward(const torch::Tensor& input) {
  const torch::Tensor features = hidden_ ? hidden_->forward(input) : input;
  // Every gate over all experts: one softmax over the stacked logits.
  if (selects_all_) return softmax_over_experts(output_->forward_stacked(features));
  // Gates over a subset of experts (PLE): scatter into a dense row so one fusion serves every gate.
  std::vector<torch::Tensor> rows;
  const auto logits = output_->forward(features);
  const int64_t batch = logits.front().size(0);
  for (size_t g = 0; g < logits.size(); ++g) {
    const auto probabilities = softmax_over_experts(logits[g]);
    if (spec_.selected[g].empty()) {
      rows.push_back(probabilities);
      continue;
    }
    rows.push_back(torch::zeros({batch, spec_.num_experts}, probabilities.options())
                       .index_copy(1, selected_index_[g], probabilities));
  }
  return torch::stack(rows, 1);
}

void GateBankImpl::reference_entries(const std::function<std::string(int64_t)>& output_prefix,
                                     const std::function<std::string(int64_t)>& mlp_prefix,
                                     ReferenceEntries& out) const {
  if (hidden_) hidden_->reference_entries(mlp_prefix, out);
  output_->reference_entries(output_prefix, out);
}

}  // namespace adatt
