#include "adatt/layers.h"

#include <cmath>
#include <numeric>

#include "adatt/errors.h"
#include "adatt/init.h"

namespace adatt {

torch::Tensor grouped_linear(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias,
                             const torch::Tensor& index) {
  const int64_t units = weight.size(0);
  const int64_t out = weight.size(1);
  const int64_t in = weight.size(2);
  if (input.dim() == 2) {
    // Every unit reads the same rows: one GEMM against all units' weights side by side.
    return torch::addmm(bias.reshape({units * out}), input, weight.reshape({units * out, in}).t())
        .view({input.size(0), units, out});
  }
  torch::Tensor per_unit = input.transpose(0, 1);  // [M, B, D]
  if (index.defined()) per_unit = per_unit.index_select(0, index);
  return torch::baddbmm(bias.unsqueeze(1), per_unit, weight.transpose(1, 2)).transpose(0, 1);
}

void init_linear_(torch::Tensor& weight, torch::Tensor& bias, int64_t fan_in) {
  // nn.Linear: kaiming_uniform(a=sqrt(5)) for the weight and U(±1/sqrt(fan_in)) for the bias,
  // both of which come to U(±1/sqrt(fan_in)).
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  init_uniform_(weight, bound);
  init_uniform_(bias, bound);
}

GroupedMLPImpl::GroupedMLPImpl(int64_t units, int64_t input_dim, std::vector<int64_t> widths)
    : units_(units), input_dim_(input_dim), widths_(std::move(widths)) {
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

torch::Tensor GroupedMLPImpl::forward(const torch::Tensor& input, const torch::Tensor& index) {
  if (widths_.empty()) {
    // An MLP without layers is the identity; give every unit its own view of its input.
    if (input.dim() == 2) return input.unsqueeze(1).expand({input.size(0), units_, input.size(1)});
    return index.defined() ? input.index_select(1, index) : input;
  }
  torch::Tensor hidden = input;
  for (size_t k = 0; k < weights_.size(); ++k) {
    hidden = torch::relu(grouped_linear(hidden, weights_[k], biases_[k], k == 0 ? index : torch::Tensor()));
  }
  return hidden;
}

void GroupedMLPImpl::reference_entries(const std::function<std::string(int64_t)>& prefix,
                                       ReferenceEntries& out) const {
  for (int64_t unit = 0; unit < units_; ++unit) {
    for (size_t k = 0; k < weights_.size(); ++k) {
      const std::string layer = prefix(unit) + "mlp_net." + std::to_string(2 * k) + ".";
      auto pick = [unit](const torch::Tensor& t) { return t.select(0, unit); };
      out.push_back({layer + "weight", weights_[k], pick});
      out.push_back({layer + "bias", biases_[k], pick});
    }
  }
}

RaggedLinearImpl::RaggedLinearImpl(int64_t input_dim, std::vector<int64_t> output_dims)
    : input_dim_(input_dim), output_dims_(std::move(output_dims)) {
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

std::vector<torch::Tensor> RaggedLinearImpl::forward(const torch::Tensor& input, const torch::Tensor& index) {
  const auto units = static_cast<int64_t>(output_dims_.size());
  if (uniform()) {
    const int64_t out = output_dims_.front();
    return grouped_linear(input, weight_.view({units, out, input_dim_}), bias_.view({units, out}), index).unbind(1);
  }
  std::vector<torch::Tensor> outputs;
  outputs.reserve(output_dims_.size());
  const torch::Tensor host_index = index.defined() ? index.cpu() : torch::Tensor();
  for (int64_t unit = 0; unit < units; ++unit) {
    const auto rows =
        input.dim() == 2 ? input : input.select(1, host_index.defined() ? host_index[unit].item<int64_t>() : unit);
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

GateBankImpl::GateBankImpl(int64_t input_dim, GateSpec spec) : spec_(std::move(spec)) {
  const auto gates = static_cast<int64_t>(spec_.selected.size());
  std::vector<int64_t> sizes;
  for (const auto& selected : spec_.selected) {
    sizes.push_back(selected.empty() ? spec_.num_experts : static_cast<int64_t>(selected.size()));
  }
  int64_t output_input_dim = input_dim;
  if (!spec_.hidden.empty()) {
    hidden_ = register_module("hidden", GroupedMLP(gates, input_dim, spec_.hidden));
    output_input_dim = spec_.hidden.back();
  }
  output_ = register_module("output", RaggedLinear(output_input_dim, sizes));
  if (!spec_.input_module.empty()) {
    input_index_ = register_buffer("input_index", torch::tensor(spec_.input_module, torch::kLong));
  }
  for (size_t g = 0; g < spec_.selected.size(); ++g) {
    selected_index_.push_back(spec_.selected[g].empty()
                                  ? torch::Tensor()
                                  : register_buffer("selected" + std::to_string(g),
                                                    torch::tensor(spec_.selected[g], torch::kLong)));
  }
}

torch::Tensor GateBankImpl::forward(const torch::Tensor& input) {
  torch::Tensor features = input;
  torch::Tensor index = input.dim() == 3 ? input_index_ : torch::Tensor();
  if (hidden_) {
    features = hidden_->forward(input, index);
    index = torch::Tensor();  // the gate MLP's output is already one row per gate
  }
  std::vector<torch::Tensor> probabilities;
  for (auto& logits : output_->forward(features, index)) probabilities.push_back(torch::softmax(logits, -1));

  const bool selects_all = std::all_of(spec_.selected.begin(), spec_.selected.end(),
                                       [](const std::vector<int64_t>& s) { return s.empty(); });
  if (selects_all) return torch::stack(probabilities, 1);
  // Gates over a subset of experts (PLE): scatter into a dense row so one bmm fuses every gate.
  std::vector<torch::Tensor> rows;
  const int64_t batch = probabilities.front().size(0);
  for (size_t g = 0; g < probabilities.size(); ++g) {
    const auto& selected = spec_.selected[g];
    if (selected.empty()) {
      rows.push_back(probabilities[g]);
      continue;
    }
    rows.push_back(torch::zeros({batch, spec_.num_experts}, probabilities[g].options())
                       .index_copy(1, selected_index_[g], probabilities[g]));
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
