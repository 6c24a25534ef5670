// Per-environment data of the addon (one per Node main thread or worker thread).
#pragma once

#include <napi.h>

#include <memory>

#include "worker.h"

namespace adatt::binding {

struct AddonData {
  Napi::FunctionReference model_class;
  Napi::FunctionReference dataset_class;
  Napi::FunctionReference script_class;
  Napi::FunctionReference process_group_class;
  std::shared_ptr<Completions> completions;  // settles this environment's native jobs
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// True when `value` is an instance of `cls` (so Unwrap is safe).
inline bool is_instance(const Napi::Value& value, const Napi::FunctionReference& cls) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(cls.Value());
}

}  // namespace adatt::binding
