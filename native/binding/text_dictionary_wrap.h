// JS class `TextDictionary` of the raw addon: dictionary coding of DuckDB's text vectors for the
// data layer (lib/data/engine.ts; see lib/addon.ts RawTextDictionary).
#pragma once

#include <napi.h>

#include <memory>

#include "adatt/text_dictionary.h"
#include "external_memory.h"

namespace adatt::binding {

class AddonTextDictionary : public Napi::ObjectWrap<AddonTextDictionary> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonTextDictionary(const Napi::CallbackInfo& info);

 private:
  Napi::Value CodeStrings(const Napi::CallbackInfo& info);
  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value Seal(const Napi::CallbackInfo& info);
  Napi::Value Values(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  TextDictionary& live();

  std::unique_ptr<TextDictionary> dictionary_;
  ExternalMemory memory_;
};

}  // namespace adatt::binding
