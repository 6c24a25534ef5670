// Plain JS values <-> native core structs. Shapes and types are validated in TypeScript; these
// functions still check what would be undefined behaviour (wrong typed-array kinds and lengths).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adatt/calibration.h"
#include "adatt/config.h"
#include "adatt/metrics.h"
#include "adatt/model.h"

namespace adatt::binding {

ModelConfig to_model_config(const Napi::Object& object);

// The fields of one options object of the addon contract (lib/addon.ts), named in errors by their
// path ('optimizer.lr'). lib/ states every default and passes every field, so a missing or mistyped
// field is an error, never a second default.
class Fields {
 public:
  explicit Fields(const Napi::Value& value, std::string path = "options");
  double number(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  bool boolean(const std::string& key) const;
  std::string string(const std::string& key) const;
  Fields object(const std::string& key) const;

 private:
  Napi::Value get(const std::string& key, bool present, const char* kind) const;
  std::string path_of(const std::string& key) const;

  Napi::Object object_;
  std::string path_;
};

// 'binary' | 'multiclass' | 'regression', one per task.
std::vector<TaskType> to_task_types(const Napi::Value& value);
// evaluate's `where`: one { task, equals } per task (task -1: every row); absent: every row for all.
std::vector<SampleSpace> to_sample_spaces(const Napi::Value& value, size_t tasks);
// 'temperature' | 'platt' | 'isotonic'.
CalibrationMethod to_calibration_method(const Napi::Value& value, const std::string& field);
// Per task, a { method, scale, bias, knotLogits, knotProbabilities } calibrator or null; absent:
// none for every task.
std::vector<std::optional<Calibrator>> to_calibrators(const Napi::Value& value, size_t tasks);
Napi::Object to_raw_calibrator(Napi::Env env, const Calibrator& calibrator);
Napi::Object to_raw_reliability_curve(Napi::Env env, const ReliabilityCurve& curve);
// Copies the batch's typed arrays into CPU tensors (the JS buffers may change once we return).
Batch to_batch(const Napi::Value& value, const ModelConfig& config);
std::vector<torch::Tensor> to_float_arrays(const Napi::Value& value, const std::string& field);
// A BigInt64Array of group ids (grouped AUC) as an int64 tensor (a copy).
torch::Tensor to_group_ids(const Napi::Value& value);
// A JS tensor { shape, data, dtype? } as a CPU tensor (a copy): without dtype the typed array's kind
// decides (Float32Array -> float32, Int32Array -> int32, BigInt64Array -> int64, …).
torch::Tensor to_tensor(const Napi::Value& value, const std::string& field);
// A state dict (names to float32 tensors).
std::map<std::string, torch::Tensor> to_tensor_map(const Napi::Value& value);

Napi::Float32Array to_float32_array(Napi::Env env, const torch::Tensor& tensor);
// { shape, data: Float32Array } (the native model's tensors: weights, gradients, statistics).
Napi::Object to_raw_tensor(Napi::Env env, const torch::Tensor& tensor);
// { shape, data, dtype } with data a typed array of the tensor's own kind (TorchScript results).
Napi::Object to_typed_tensor(Napi::Env env, const torch::Tensor& tensor);
Napi::Object to_raw_tensor_map(Napi::Env env, const std::map<std::string, torch::Tensor>& tensors);

}  // namespace adatt::binding
