// JS class `Model` of the raw addon: owns one native MultiTaskModel (see lib/addon.ts RawModel).
#pragma once

#include <napi.h>

#include <functional>
#include <memory>

#include "external_memory.h"
#include "model_state.h"

namespace adatt::binding {

class AddonModel : public Napi::ObjectWrap<AddonModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonModel(const Napi::CallbackInfo& info);
  // The model (native or TorchScript) behind a JS value, or an ADATT_INVALID_ARGUMENT / ADATT_DISPOSED error.
  static std::shared_ptr<ModelState> state_of(const Napi::Value& value, const std::string& field);

 private:
  Napi::Value Evaluate(const Napi::CallbackInfo& info);
  Napi::Value Predict(const Napi::CallbackInfo& info);
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value GateWeights(const Napi::CallbackInfo& info);
  Napi::Value ExpertActivity(const Napi::CallbackInfo& info);
  Napi::Value Gradients(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value SaveWeights(const Napi::CallbackInfo& info);
  Napi::Value LoadWeights(const Napi::CallbackInfo& info);
  Napi::Value To(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value ParameterCount(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelState> live_state() const;

  std::shared_ptr<ModelState> state_;
  ExternalMemory memory_;
};

}  // namespace adatt::binding
