// Tells V8 how much native memory a JS wrapper keeps alive. V8 cannot see tensors, so without this
// it collects wrappers of dropped models and datasets (freed only by their finalizers) as rarely as
// their few bytes of JS heap suggest, and native memory peaks far above what is in use.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace adatt::binding {

class ExternalMemory {
 public:
  ExternalMemory() = default;
  ExternalMemory(const ExternalMemory&) = delete;
  ExternalMemory& operator=(const ExternalMemory&) = delete;
  ~ExternalMemory() { release(); }

  // Reports `bytes` as held (replacing what was reported before).
  void track(Napi::Env env, int64_t bytes);
  // Reports the memory as given back (dispose, or the wrapper's finalizer).
  void release();

 private:
  napi_env env_ = nullptr;
  int64_t bytes_ = 0;
};

int64_t tensor_bytes(const std::vector<torch::Tensor>& tensors);

}  // namespace adatt::binding
