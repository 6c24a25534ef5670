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

// Optional fields of an options object: the default when absent, an error naming `field` when mistyped.
double number_or(const Napi::Object& object, const std::string& field, double fallback);
int64_t integer_or(const Napi::Object& object, const std::string& field, int64_t fallback);
std::string string_or(const Napi::Object& object, const std::string& field, const std::string& fallback);
Napi::Object object_or_empty(const Napi::Object& object, const std::string& field);
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
std::map<std::string, torch::Tensor> to_tensor_map(const Napi::Value& value);

Napi::Float32Array to_float32_array(Napi::Env env, const torch::Tensor& tensor);
Napi::Object to_raw_tensor(Napi::Env env, const torch::Tensor& tensor);
Napi::Object to_raw_tensor_map(Napi::Env env, const std::map<std::string, torch::Tensor>& tensors);

}  // namespace adatt::binding
