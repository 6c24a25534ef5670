// Seeded parameter initialisation that does not touch LibTorch's global RNG: a model is built under
// an InitScope, and every init_* call draws from that scope's generator.
#pragma once

#include <torch/torch.h>

namespace adatt {

class InitScope {
 public:
  explicit InitScope(uint64_t seed);
  ~InitScope();
  InitScope(const InitScope&) = delete;
  InitScope& operator=(const InitScope&) = delete;

 private:
  at::Generator* previous_;
  at::Generator generator_;
};

// U(-bound, bound) in place.
void init_uniform_(torch::Tensor& tensor, double bound);
// N(0, 1) in place (nn.Embedding's default).
void init_normal_(torch::Tensor& tensor);

}  // namespace adatt
