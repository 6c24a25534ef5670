#include "adatt/init.h"

#include <ATen/CPUGeneratorImpl.h>

namespace adatt {
namespace {
thread_local at::Generator* current_generator = nullptr;

c10::optional<at::Generator> active_generator() {
  if (current_generator == nullptr) return c10::nullopt;
  return *current_generator;
}
}  // namespace

InitScope::InitScope(uint64_t seed)
    : previous_(current_generator), generator_(at::make_generator<at::CPUGeneratorImpl>(seed)) {
  current_generator = &generator_;
}

InitScope::~InitScope() { current_generator = previous_; }

void init_uniform_(torch::Tensor& tensor, double bound) {
  torch::NoGradGuard no_grad;
  tensor.uniform_(-bound, bound, active_generator());
}

void init_normal_(torch::Tensor& tensor) {
  torch::NoGradGuard no_grad;
  tensor.normal_(0.0, 1.0, active_generator());
}

}  // namespace adatt
