// JS class `Model` of the raw addon: owns one native MultiTaskModel (see lib/addon.ts RawModel).
#pragma once

#include <napi.h>

#include <memory>

#include "model_state.h"

namespace adatt::binding {

class AddonModel : public TaskModelWrap<AddonModel> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonModel(const Napi::CallbackInfo& info);
  // The model (native or TorchScript) behind a JS value, or an ADATT_INVALID_ARGUMENT / ADATT_DISPOSED error.
  static std::shared_ptr<ModelState> state_of(const Napi::Value& value, const std::string& field);

 private:
  Napi::Value Forward(const Napi::CallbackInfo& info);
  Napi::Value GateWeights(const Napi::CallbackInfo& info);
  Napi::Value ExpertActivity(const Napi::CallbackInfo& info);
  Napi::Value Gradients(const Napi::CallbackInfo& info);
  Napi::Value StateDict(const Napi::CallbackInfo& info);
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info);
  Napi::Value SaveWeights(const Napi::CallbackInfo& info);
  Napi::Value LoadWeights(const Napi::CallbackInfo& info);
};

}  // namespace adatt::binding
