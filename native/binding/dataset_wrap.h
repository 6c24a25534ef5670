// JS class `Dataset` of the raw addon: tensors of one encoded split (see lib/addon.ts RawDataset).
#pragma once

#include <napi.h>

#include <memory>

#include "adatt/dataset.h"
#include "external_memory.h"

namespace adatt::binding {

class AddonDataset : public Napi::ObjectWrap<AddonDataset> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonDataset(const Napi::CallbackInfo& info);
  // The dataset behind a JS value, or an ADATT_INVALID_ARGUMENT error naming `field`.
  static std::shared_ptr<const Dataset> from_value(const Napi::Value& value, const std::string& field);

 private:
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Bytes(const Napi::CallbackInfo& info);
  Napi::Value Subset(const Napi::CallbackInfo& info);
  Napi::Value Labels(const Napi::CallbackInfo& info);
  Napi::Value SampleWeights(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  const Dataset& live() const;

  std::shared_ptr<const Dataset> dataset_;
  ExternalMemory memory_;
};

}  // namespace adatt::binding
