// JS class `ProcessGroup` of the raw addon: one rank's membership of a c10d process group.
#pragma once

#include <napi.h>

#include <memory>

#include "adatt/distributed.h"

namespace adatt::binding {

class AddonProcessGroup : public Napi::ObjectWrap<AddonProcessGroup> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonProcessGroup(const Napi::CallbackInfo& info);
  // The communicator behind a JS value (undefined/null -> nullptr), or an ADATT_INVALID_ARGUMENT error.
  static std::shared_ptr<Communicator> from_value(const Napi::Value& value, const std::string& field);

 private:
  Napi::Value Rank(const Napi::CallbackInfo& info);
  Napi::Value WorldSize(const Napi::CallbackInfo& info);
  Napi::Value Backends(const Napi::CallbackInfo& info);
  Napi::Value Barrier(const Napi::CallbackInfo& info);
  Napi::Value AllGatherBytes(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<Communicator> live() const;

  std::shared_ptr<Communicator> communicator_;
};

// initProcessGroup({ masterAddr, masterPort, worldSize, rank, timeoutMs, cudaBackend }) -> Promise<ProcessGroup>
Napi::Value InitProcessGroup(const Napi::CallbackInfo& info);

}  // namespace adatt::binding
