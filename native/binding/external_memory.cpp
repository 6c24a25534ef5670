#include "external_memory.h"

namespace adatt::binding {

void ExternalMemory::track(Napi::Env env, int64_t bytes) {
  // Only the change: each report of a positive amount may start a full GC once V8's external
  // total is over its limit, so a dictionary that grows chunk by chunk must not re-add its whole size.
  if (env_ != nullptr && env != env_) release();  // a count belongs to the env it was reported to
  env_ = env;
  const int64_t change = bytes - bytes_;
  bytes_ = bytes;
  if (change == 0) return;
  int64_t total = 0;
  napi_adjust_external_memory(env_, change, &total);
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
