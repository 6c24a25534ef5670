#include "external_memory.h"

namespace adatt::binding {

void ExternalMemory::track(Napi::Env env, int64_t bytes) {
  release();
  env_ = env;
  bytes_ = bytes;
  int64_t total = 0;
  napi_adjust_external_memory(env_, bytes_, &total);
}

void ExternalMemory::release() {
  if (env_ == nullptr || bytes_ == 0) return;
  int64_t total = 0;
  napi_adjust_external_memory(env_, -bytes_, &total);
  bytes_ = 0;
}

int64_t tensor_bytes(const std::vector<torch::Tensor>& tensors) {
  int64_t bytes = 0;
  for (const auto& tensor : tensors) bytes += static_cast<int64_t>(tensor.nbytes());
  return bytes;
}

}  // namespace adatt::binding
