// Per-environment data of the addon (one per Node main thread or worker thread).
#pragma once

#include <napi.h>

#include <memory>

#include "worker.h"

namespace adatt::binding {

struct AddonData {
  Napi::FunctionReference dataset_class;        // subset() builds Datasets
  Napi::FunctionReference script_class;         // loadScript() builds ScriptModules
  Napi::FunctionReference process_group_class;  // initProcessGroup() builds ProcessGroups
  std::shared_ptr<Completions> completions;     // settles this environment's native jobs
};

inline AddonData& addon_data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

// The native classes' type tags (napi_type_tag_object). An object is taken for one of them by the
// tag its constructor set once it succeeded, not by its prototype, which JS can fake
// (Object.create(Model.prototype)) or change (Object.setPrototypeOf).
enum class NativeClass { Model, ScriptModule, Dataset, ProcessGroup };

inline const napi_type_tag* type_tag_of(NativeClass kind) {
  // Arbitrary 128-bit values, fixed in the source (only this addon's objects carry them).
  static const napi_type_tag tags[] = {
      {0x6a1f0c3e5b2d4e71ULL, 0x9c8b7a6f5e4d3c2bULL},  // Model
      {0x3d5e7f9a1b2c4d6eULL, 0x8f7e6d5c4b3a2918ULL},  // ScriptModule
      {0x1e2d3c4b5a697887ULL, 0x96a5b4c3d2e1f0a9ULL},  // Dataset
      {0x7b6a59483726150fULL, 0xe4d3c2b1a0f9e8d7ULL},  // ProcessGroup
  };
  return &tags[static_cast<int>(kind)];
}

inline void tag_as(const Napi::Object& object, NativeClass kind) { object.TypeTag(type_tag_of(kind)); }

// True when `value` was made by the constructor of `kind` (so Unwrap is safe).
inline bool is_native(const Napi::Value& value, NativeClass kind) {
  return value.IsObject() && value.As<Napi::Object>().CheckTypeTag(type_tag_of(kind));
}

}  // namespace adatt::binding
