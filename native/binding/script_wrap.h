// JS class `ScriptModule` of the raw addon: a TorchScript module from PyTorch (see lib/torchscript.ts).
#pragma once

#include <napi.h>

#include <memory>

#include "model_state.h"

namespace adatt::binding {

class AddonScriptModule : public TaskModelWrap<AddonScriptModule> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonScriptModule(const Napi::CallbackInfo& info);
  static std::shared_ptr<ModelState> state_of(const Napi::Object& object);

 private:
  Napi::Value Methods(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Configure(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
};

// loadScript(path, device) -> Promise<ScriptModule>
Napi::Value LoadScript(const Napi::CallbackInfo& info);

}  // namespace adatt::binding
