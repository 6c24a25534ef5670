// The gated fusion of a level: out[b, g, :] = sum_e gates[b, g, e] * experts[b, e, :].
//
// That is one tiny matrix product per example (G x E by E x D). LibTorch's CPU bmm runs such a
// batch as one BLAS call per example (with OpenBLAS) and dominated the training step, so on the CPU
// the product and both of its gradients are our own kernels: parallel over examples, vectorised
// along D, reading the experts through their strides (no copy). Elsewhere (CUDA) it is torch::bmm.
#pragma once

#include <torch/torch.h>

namespace adatt {

// gates [B, G, E], experts [B, E, D] (any strides) -> [B, G, D], differentiable in both arguments.
torch::Tensor fuse_experts(const torch::Tensor& gates, const torch::Tensor& experts);

}  // namespace adatt
