// The multi-task part of every model kind (the reference `CentralTaskArch.mtl_arch`): maps the
// input vector [B, D] to per-task representations [B, T, D_out] (or [B, D_out] shared by all tasks).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "adatt/config.h"
#include "adatt/layers.h"

namespace adatt {

// What a forward pass records per level when asked (gate weights, expert health), detached.
struct ArchProbe {
  // Per fusion level, the dense gate matrix [B, G, E] (softmax output, before any native-expert
  // residual); none for kinds without gates.
  std::vector<torch::Tensor> gates;
  // Per level, the experts' outputs [B, E, D] after their last ReLU: the level's experts (gated
  // kinds), the tasks' networks (cross-stitch, before the stitch; single-task) or the shared bottom.
  std::vector<torch::Tensor> experts;
};

class MultiTaskArch : public torch::nn::Module {
 public:
  // input [B, D]. Returns [B, T, D_out], or [B, D_out] when every task reads the same output.
  // With a `probe`, records what it holds level by level.
  virtual torch::Tensor forward(const torch::Tensor& input, ArchProbe* probe) = 0;
  virtual int64_t output_dim() const = 0;
  // Parameters under their reference names (prefix "mtl_arch.").
  virtual void reference_entries(ReferenceEntries& out) const = 0;
  // GradNorm's "last shared layer": the last weights that every task's output depends on — the
  // last level's experts (AdaTT, MMoE: every gate fuses them all; cross-stitch: the stitch mixes
  // them), PLE's last shared experts, the shared bottom's last layer. None in single-task models.
  virtual void shared_layer_entries(ReferenceEntries& out) const = 0;
};

std::shared_ptr<MultiTaskArch> make_arch(const ModelConfig& config);

}  // namespace adatt
