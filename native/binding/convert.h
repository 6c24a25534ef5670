// Plain JS values <-> native core structs. Shapes and types are validated in TypeScript; these
// functions still check what would be undefined behaviour (wrong typed-array kinds and lengths).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "adatt/config.h"
#include "adatt/model.h"

namespace adatt::binding {

ModelConfig to_model_config(const Napi::Object& object);
// Copies the batch's typed arrays into CPU tensors (the JS buffers may change once we return).
Batch to_batch(const Napi::Value& value, const ModelConfig& config);
std::vector<torch::Tensor> to_float_arrays(const Napi::Value& value, const std::string& field);
std::map<std::string, torch::Tensor> to_tensor_map(const Napi::Value& value);

Napi::Float32Array to_float32_array(Napi::Env env, const torch::Tensor& tensor);
Napi::Object to_raw_tensor(Napi::Env env, const torch::Tensor& tensor);
Napi::Object to_raw_tensor_map(Napi::Env env, const std::map<std::string, torch::Tensor>& tensors);

}  // namespace adatt::binding
