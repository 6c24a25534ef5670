// Batched building blocks: many small Linear/MLP units of one architecture evaluated as one GEMM each.
//
// Layout convention: a "unit input" is either shared, a [B, D] tensor read by every unit, or
// per-module, a [B, M, D] tensor where unit u reads module `module_of[u]` (see UnitRouting).
// Unit outputs are [B, N, out], often a transposed view of a contiguous [N, B, out] buffer, so the
// next grouped layer reads it without a copy.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace adatt {

// One reference-layout tensor: `slice(param)` gives the view of the internal (stacked) storage
// that holds it; applied to param.grad() it gives that tensor's gradient.
struct ReferenceEntry {
  std::string name;
  torch::Tensor param;
  std::function<torch::Tensor(const torch::Tensor&)> slice;
};
using ReferenceEntries = std::vector<ReferenceEntry>;

// Which module of a per-module input each of N units reads, decided once at construction so that
// the common layouts cost no gather: unit u reads module u (gates, towers, MMoE experts), or the
// units come in equal consecutive groups per module (AdaTT and PLE experts: one GEMM per module).
// Anything else gathers the modules through an index buffer registered on the owning module.
class UnitRouting {
 public:
  UnitRouting() = default;  // unit u reads module u
  // module_of[u] for every unit; empty for "unit u reads module u".
  UnitRouting(const std::vector<int64_t>& module_of, torch::nn::Module& owner);

  int64_t group_size() const { return group_size_; }                   // units per module, modules in order
  const torch::Tensor& gather_index() const { return gather_index_; }  // defined when gathering
  int64_t module_of(int64_t unit) const;
  // Without a gather: the modules that `units` units read, input[:, :units / group_size] as a view
  // (narrowed only when they are a prefix: a narrow's backward costs a zero fill).
  torch::Tensor modules_read(const torch::Tensor& input, int64_t units) const;

 private:
  std::vector<int64_t> module_of_;
  int64_t group_size_ = 1;
  torch::Tensor gather_index_;
};

// y[b, u] = W[u] x[b, module_of(u)] + b[u] for N units (ReLU applied when `relu`); W is [N, out, in],
// bias [N, out]. Returns [B, N, out].
torch::Tensor grouped_linear(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias,
                             const UnitRouting& routing, bool relu);

// PyTorch's nn.Linear default init, for `units` stacked Linear layers in [units, out, in] layout.
void init_linear_(torch::Tensor& weight, torch::Tensor& bias, int64_t fan_in);

// N MLPs of identical widths (Linear+ReLU per layer, as the reference MLP), stacked per layer.
class GroupedMLPImpl : public torch::nn::Module {
 public:
  // input_module: the module each unit reads from a per-module input (empty: unit u reads module u).
  GroupedMLPImpl(int64_t units, int64_t input_dim, std::vector<int64_t> widths,
                 const std::vector<int64_t>& input_module = {});
  // input: [B, D] shared or [B, M, D] per module. -> [B, N, out]
  torch::Tensor forward(const torch::Tensor& input);
  int64_t output_dim() const { return widths_.empty() ? input_dim_ : widths_.back(); }
  int64_t units() const { return units_; }
  // Unit u's layers as `prefix(u) + "mlp_net.{2k}.weight|bias"` (the reference MLP's Sequential).
  void reference_entries(const std::function<std::string(int64_t)>& prefix, ReferenceEntries& out) const;
  // The last layer's weight of units [first, first + count), named as in reference_entries.
  void last_weight_entries(const std::function<std::string(int64_t)>& prefix, int64_t first, int64_t count,
                           ReferenceEntries& out) const;

 private:
  int64_t units_;
  int64_t input_dim_;
  std::vector<int64_t> widths_;
  UnitRouting routing_;
  std::vector<torch::Tensor> weights_;
  std::vector<torch::Tensor> biases_;
};
TORCH_MODULE(GroupedMLP);

// N Linear units whose output widths may differ (task towers with multiclass heads, PLE gates with
// uneven expert counts), stored concatenated: weight [sum(out), in], bias [sum(out)].
class RaggedLinearImpl : public torch::nn::Module {
 public:
  RaggedLinearImpl(int64_t input_dim, std::vector<int64_t> output_dims, const std::vector<int64_t>& input_module = {});
  // input as for GroupedMLP; returns one [B, out_u] tensor per unit.
  std::vector<torch::Tensor> forward(const torch::Tensor& input);
  // When every unit has the same width: all outputs as one [B, N, out] tensor.
  torch::Tensor forward_stacked(const torch::Tensor& input);
  bool uniform() const;
  void reference_entries(const std::function<std::string(int64_t)>& prefix, ReferenceEntries& out) const;

 private:
  int64_t input_dim_;
  std::vector<int64_t> output_dims_;
  UnitRouting routing_;
  std::vector<int64_t> offsets_;
  torch::Tensor weight_;
  torch::Tensor bias_;
};
TORCH_MODULE(RaggedLinear);

// softmax over the last dimension, as elementwise passes: LibTorch 1.13's CPU softmax spends ~20 ns
// per element on a last dimension of a few experts (0.4 ms for a [1024, 3, 6] gate bank, forward;
// 3x that with backward), five plain passes a fifth of that.
torch::Tensor softmax_over_experts(const torch::Tensor& logits);

// The gates of one fusion level: gate g reads one input module (or the shared input), optionally
// runs a gate MLP, and produces a softmax over its selected experts. The result is a dense
// [B, G, E] matrix (zeros where a gate cannot select an expert) ready for fuse_experts.
struct GateSpec {
  std::vector<int64_t> input_module;           // per gate; ignored when the input is shared
  std::vector<std::vector<int64_t>> selected;  // per gate, expert indices; empty = all experts
  int64_t num_experts = 0;
  std::vector<int64_t> hidden;  // gate MLP widths (MMoE), applied before the output layer
};

class GateBankImpl : public torch::nn::Module {
 public:
  GateBankImpl(int64_t input_dim, GateSpec spec);
  torch::Tensor forward(const torch::Tensor& input);  // -> [B, G, E]
  int64_t gates() const { return static_cast<int64_t>(spec_.selected.size()); }
  // Gate g as `prefix(g) + "weight|bias"` for the output layer; the MLP under `mlp_prefix(g)`.
  void reference_entries(const std::function<std::string(int64_t)>& output_prefix,
                         const std::function<std::string(int64_t)>& mlp_prefix, ReferenceEntries& out) const;

 private:
  GateSpec spec_;
  bool selects_all_ = true;
  std::vector<torch::Tensor> selected_index_;  // per gate; undefined when it selects all experts
  GroupedMLP hidden_{nullptr};
  RaggedLinear output_{nullptr};
};
TORCH_MODULE(GateBank);

}  // namespace adatt
