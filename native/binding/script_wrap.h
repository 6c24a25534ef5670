// JS class `ScriptModule` of the raw addon: a TorchScript module from PyTorch (see lib/torchscript.ts).
#pragma once

#include <napi.h>

#include <memory>

#include "external_memory.h"
#include "model_state.h"

namespace adatt::binding {

class AddonScriptModule : public Napi::ObjectWrap<AddonScriptModule> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonScriptModule(const Napi::CallbackInfo& info);
  static std::shared_ptr<ModelState> state_of(const Napi::Object& object);

 private:
  Napi::Value Methods(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Configure(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value ParameterCount(const Napi::CallbackInfo& info);
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<ModelState> live() const;

  std::shared_ptr<ModelState> state_;
  ExternalMemory memory_;
};

// loadScript(path, device) -> Promise<ScriptModule>
Napi::Value LoadScript(const Napi::CallbackInfo& info);

}  // namespace adatt::binding
