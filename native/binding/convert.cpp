#include "convert.h"

#include <cstring>
#include <utility>

#include "errors.h"

namespace adatt::binding {
namespace {

Napi::Value field_of(const Napi::Object& object, const std::string& key) { return object.Get(key); }

int64_t to_int(const Napi::Value& value, const std::string& field) {
  if (!value.IsNumber()) throw_invalid(field + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (number != static_cast<double>(static_cast<int64_t>(number))) throw_invalid(field + " must be an integer");
  return static_cast<int64_t>(number);
}

std::vector<int64_t> to_int_vector(const Napi::Value& value, const std::string& field) {
  if (!value.IsArray()) throw_invalid(field + " must be an array");
  const auto array = value.As<Napi::Array>();
  std::vector<int64_t> result;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    result.push_back(to_int(array.Get(i), field + "[" + std::to_string(i) + "]"));
  }
  return result;
}

std::vector<std::vector<int64_t>> to_int_matrix(const Napi::Value& value, const std::string& field) {
  if (!value.IsArray()) throw_invalid(field + " must be an array of arrays");
  const auto array = value.As<Napi::Array>();
  std::vector<std::vector<int64_t>> result;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    result.push_back(to_int_vector(array.Get(i), field + "[" + std::to_string(i) + "]"));
  }
  return result;
}

std::vector<Napi::Object> to_object_vector(const Napi::Value& value, const std::string& field) {
  if (value.IsUndefined()) return {};
  if (!value.IsArray()) throw_invalid(field + " must be an array");
  const auto array = value.As<Napi::Array>();
  std::vector<Napi::Object> result;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const auto item = array.Get(i);
    if (!item.IsObject()) throw_invalid(field + "[" + std::to_string(i) + "] must be an object");
    result.push_back(item.As<Napi::Object>());
  }
  return result;
}

template <typename TypedArray>
TypedArray typed_array_of(const Napi::Value& value, napi_typedarray_type type, const std::string& field,
                          const char* type_name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    throw_invalid(field + " must be a " + type_name);
  }
  return value.As<TypedArray>();
}

torch::Tensor float_tensor(const Napi::Value& value, const std::string& field, std::vector<int64_t> shape) {
  const auto array = typed_array_of<Napi::Float32Array>(value, napi_float32_array, field, "Float32Array");
  int64_t expected = 1;
  for (int64_t d : shape) expected *= d;
  if (static_cast<int64_t>(array.ElementLength()) != expected) {
    throw_invalid(field + " has " + std::to_string(array.ElementLength()) + " values, expected " +
                  std::to_string(expected));
  }
  auto tensor = torch::empty(shape, torch::kFloat32);
  if (expected > 0) std::memcpy(tensor.data_ptr<float>(), array.Data(), sizeof(float) * expected);
  return tensor;
}

torch::Tensor long_tensor(const Napi::Value& value, const std::string& field, int64_t expected_length) {
  const auto array = typed_array_of<Napi::Int32Array>(value, napi_int32_array, field, "Int32Array");
  const auto length = static_cast<int64_t>(array.ElementLength());
  if (expected_length >= 0 && length != expected_length) {
    throw_invalid(field + " has " + std::to_string(length) + " values, expected " + std::to_string(expected_length));
  }
  auto tensor = torch::empty({length}, torch::kInt32);
  if (length > 0) std::memcpy(tensor.data_ptr<int32_t>(), array.Data(), sizeof(int32_t) * length);
  return tensor.to(torch::kLong);
}

torch::ScalarType dtype_of(napi_typedarray_type type, const std::string& field) {
  switch (type) {
    case napi_float32_array: return torch::kFloat32;
    case napi_float64_array: return torch::kFloat64;
    case napi_int32_array: return torch::kInt32;
    case napi_bigint64_array: return torch::kInt64;
    case napi_uint8_array: return torch::kUInt8;
    case napi_int8_array: return torch::kInt8;
    case napi_int16_array: return torch::kInt16;
    default: throw_invalid(field + ".data has an unsupported typed array kind");
  }
}

torch::ScalarType named_dtype(const std::string& name, const std::string& field) {
  if (name == "float32") return torch::kFloat32;
  if (name == "float64") return torch::kFloat64;
  if (name == "int32") return torch::kInt32;
  if (name == "int64") return torch::kInt64;
  if (name == "bool") return torch::kBool;
  if (name == "uint8") return torch::kUInt8;
  throw_invalid(field + ".dtype must be float32, float64, int32, int64, bool or uint8");
}

}  // namespace

torch::Tensor to_tensor(const Napi::Value& value, const std::string& field) {
  if (!value.IsObject()) throw_invalid(field + " must be a tensor { shape, data }");
  const auto object = value.As<Napi::Object>();
  const auto data = object.Get("data");
  if (!data.IsTypedArray()) throw_invalid(field + ".data must be a typed array");
  const auto array = data.As<Napi::TypedArray>();
  const auto source = dtype_of(array.TypedArrayType(), field);
  const auto shape = to_int_vector(object.Get("shape"), field + ".shape");
  int64_t count = 1;
  for (int64_t extent : shape) {
    if (extent < 0) throw_invalid(field + ".shape must not be negative");
    count *= extent;
  }
  if (count != static_cast<int64_t>(array.ElementLength())) {
    throw_invalid(field + ".data has " + std::to_string(array.ElementLength()) + " values for a shape of " +
                  std::to_string(count));
  }
  auto tensor = torch::empty(shape, source);
  if (count > 0) {
    // The typed array's own data pointer: ArrayBuffer() refuses a view of a SharedArrayBuffer.
    void* bytes = nullptr;
    if (napi_get_typedarray_info(value.Env(), array, nullptr, nullptr, &bytes, nullptr, nullptr) != napi_ok) {
      throw_invalid(field + ".data cannot be read");
    }
    std::memcpy(tensor.data_ptr(), bytes, array.ByteLength());
  }
  const auto dtype = object.Get("dtype");
  if (dtype.IsString()) tensor = tensor.to(named_dtype(dtype.As<Napi::String>().Utf8Value(), field));
  return tensor;
}

ModelConfig to_model_config(const Napi::Object& object) {
  ModelConfig config;
  const auto kind = field_of(object, "kind");
  if (!kind.IsString()) throw_invalid("kind must be a string");
  config.kind = parse_model_kind(kind.As<Napi::String>().Utf8Value());
  config.dense_dim = to_int(field_of(object, "denseDim"), "denseDim");
  for (const auto& feature : to_object_vector(field_of(object, "categorical"), "categorical")) {
    config.categorical.push_back(
        {to_int(feature.Get("vocab"), "categorical.vocab"), to_int(feature.Get("dim"), "categorical.dim")});
  }
  for (const auto& feature : to_object_vector(field_of(object, "multiValued"), "multiValued")) {
    const auto pooling = feature.Get("pooling");
    const std::string pooling_name = pooling.IsString() ? pooling.As<Napi::String>().Utf8Value() : "mean";
    if (pooling_name != "mean" && pooling_name != "sum") throw_invalid("multiValued.pooling must be 'mean' or 'sum'");
    config.multi_valued.push_back({to_int(feature.Get("vocab"), "multiValued.vocab"),
                                   to_int(feature.Get("dim"), "multiValued.dim"),
                                   pooling_name == "sum" ? Pooling::Sum : Pooling::Mean});
  }
  for (const auto& task : to_object_vector(field_of(object, "tasks"), "tasks")) {
    const auto name = task.Get("name");
    if (!name.IsString()) throw_invalid("tasks.name must be a string");
    config.tasks.push_back({name.As<Napi::String>().Utf8Value(), to_int(task.Get("outputs"), "tasks.outputs"),
                            to_int(task.Get("conditionalOn"), "tasks.conditionalOn")});
  }
  config.expert_dims = to_int_matrix(field_of(object, "expertDims"), "expertDims");
  config.tower_dims = to_int_vector(field_of(object, "towerDims"), "towerDims");
  config.experts_per_task = to_int_vector(field_of(object, "expertsPerTask"), "expertsPerTask");
  config.shared_experts = to_int(field_of(object, "sharedExperts"), "sharedExperts");
  config.gate_dims = to_int_matrix(field_of(object, "gateDims"), "gateDims");
  config.native_residual = Fields(object, "config").boolean("nativeResidual");
  const int64_t seed = to_int(field_of(object, "seed"), "seed");
  if (seed < 0) throw_invalid("seed must be non-negative");
  config.seed = static_cast<uint64_t>(seed);
  config.validate();
  return config;
}

Fields::Fields(const Napi::Value& value, std::string path) : path_(std::move(path)) {
  if (!value.IsObject()) throw_invalid(path_ + (value.IsUndefined() ? " is missing" : " must be an object"));
  object_ = value.As<Napi::Object>();
}

std::string Fields::path_of(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

Napi::Value Fields::get(const std::string& key, bool present, const char* kind) const {
  if (!present) {
    const auto value = object_.Get(key);
    throw_invalid(path_of(key) + (value.IsUndefined() ? " is missing" : std::string(" must be ") + kind));
  }
  return object_.Get(key);
}

double Fields::number(const std::string& key) const {
  return get(key, object_.Get(key).IsNumber(), "a number").As<Napi::Number>().DoubleValue();
}

int64_t Fields::integer(const std::string& key) const {
  return to_int(get(key, object_.Get(key).IsNumber(), "a number"), path_of(key));
}

bool Fields::boolean(const std::string& key) const {
  return get(key, object_.Get(key).IsBoolean(), "a boolean").As<Napi::Boolean>().Value();
}

std::string Fields::string(const std::string& key) const {
  return get(key, object_.Get(key).IsString(), "a string").As<Napi::String>().Utf8Value();
}

Fields Fields::object(const std::string& key) const { return Fields(object_.Get(key), path_of(key)); }

std::vector<TaskType> to_task_types(const Napi::Value& value) {
  if (!value.IsArray()) throw_invalid("taskTypes must be an array");
  const auto array = value.As<Napi::Array>();
  std::vector<TaskType> types;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const auto item = array.Get(i);
    const std::string name = item.IsString() ? item.As<Napi::String>().Utf8Value() : "";
    if (name == "binary") types.push_back(TaskType::Binary);
    else if (name == "multiclass") types.push_back(TaskType::Multiclass);
    else if (name == "regression") types.push_back(TaskType::Regression);
    else throw_invalid("taskTypes[" + std::to_string(i) + "] must be 'binary', 'multiclass' or 'regression'");
  }
  return types;
}

Batch to_batch(const Napi::Value& value, const ModelConfig& config) {
  if (!value.IsObject()) throw_invalid("batch must be an object");
  const auto object = value.As<Napi::Object>();
  Batch batch;
  batch.size = to_int(object.Get("size"), "batch.size");
  if (batch.size <= 0) throw_invalid("batch.size must be positive");
  if (config.dense_dim > 0)
    batch.dense = float_tensor(object.Get("dense"), "batch.dense", {batch.size, config.dense_dim});
  const auto features = static_cast<int64_t>(config.categorical.size());
  if (features > 0) {
    batch.categorical =
        long_tensor(object.Get("categorical"), "batch.categorical", batch.size * features).view({batch.size, features});
  }
  const auto bags = to_object_vector(object.Get("multiValued"), "batch.multiValued");
  if (bags.size() != config.multi_valued.size()) {
    throw_invalid("batch.multiValued must have " + std::to_string(config.multi_valued.size()) + " features");
  }
  for (size_t i = 0; i < bags.size(); ++i) {
    const std::string field = "batch.multiValued[" + std::to_string(i) + "]";
    batch.multi_valued.push_back({long_tensor(bags[i].Get("indices"), field + ".indices", -1),
                                  long_tensor(bags[i].Get("offsets"), field + ".offsets", batch.size)});
  }
  return batch;
}

std::vector<SampleSpace> to_sample_spaces(const Napi::Value& value, size_t tasks) {
  std::vector<SampleSpace> spaces(tasks);
  if (value.IsUndefined()) return spaces;
  if (!value.IsArray() || value.As<Napi::Array>().Length() != tasks)
    throw_invalid("where needs one { task, equals } per task");
  for (uint32_t t = 0; t < tasks; ++t) {
    const auto item = value.As<Napi::Array>().Get(t);
    if (!item.IsObject()) throw_invalid("where needs one { task, equals } per task");
    const Fields space(item, "where[" + std::to_string(t) + "]");
    spaces[t] = {space.integer("task"), space.number("equals")};
    if (spaces[t].task >= static_cast<int64_t>(tasks)) throw_invalid("where.task names no task");
  }
  return spaces;
}

namespace {

constexpr std::pair<CalibrationMethod, const char*> kCalibrationMethodNames[] = {
    {CalibrationMethod::Temperature, "temperature"},
    {CalibrationMethod::Platt, "platt"},
    {CalibrationMethod::Isotonic, "isotonic"},
};

std::vector<double> to_double_vector(const Napi::Value& value, const std::string& field) {
  if (!value.IsArray()) throw_invalid(field + " must be an array of numbers");
  const auto array = value.As<Napi::Array>();
  std::vector<double> result;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const auto item = array.Get(i);
    if (!item.IsNumber()) throw_invalid(field + "[" + std::to_string(i) + "] must be a number");
    result.push_back(item.As<Napi::Number>().DoubleValue());
  }
  return result;
}

Napi::Array to_number_array(Napi::Env env, const std::vector<double>& values) {
  auto array = Napi::Array::New(env, values.size());
  for (size_t i = 0; i < values.size(); ++i) array.Set(static_cast<uint32_t>(i), Napi::Number::New(env, values[i]));
  return array;
}

}  // namespace

CalibrationMethod to_calibration_method(const Napi::Value& value, const std::string& field) {
  const std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  for (const auto& [method, method_name] : kCalibrationMethodNames) {
    if (name == method_name) return method;
  }
  throw_invalid(field + " must be 'temperature', 'platt' or 'isotonic'");
}

std::vector<std::optional<Calibrator>> to_calibrators(const Napi::Value& value, size_t tasks) {
  std::vector<std::optional<Calibrator>> calibrators(tasks);
  if (value.IsUndefined()) return calibrators;
  if (!value.IsArray() || value.As<Napi::Array>().Length() != tasks)
    throw_invalid("calibrators needs one entry per task");
  for (uint32_t t = 0; t < tasks; ++t) {
    const auto item = value.As<Napi::Array>().Get(t);
    if (item.IsNull()) continue;
    const std::string field = "calibrators[" + std::to_string(t) + "]";
    if (!item.IsObject()) throw_invalid(field + " must be a calibrator or null");
    const auto object = item.As<Napi::Object>();
    Calibrator calibrator;
    calibrator.method = to_calibration_method(object.Get("method"), field + ".method");
    calibrator.scale = Fields(object, field).number("scale");
    calibrator.bias = Fields(object, field).number("bias");
    if (calibrator.method == CalibrationMethod::Isotonic) {
      calibrator.knot_logits = to_double_vector(object.Get("knotLogits"), field + ".knotLogits");
      calibrator.knot_probabilities = to_double_vector(object.Get("knotProbabilities"), field + ".knotProbabilities");
    }
    calibrator.validate();
    calibrators[t] = std::move(calibrator);
  }
  return calibrators;
}

Napi::Object to_raw_calibrator(Napi::Env env, const Calibrator& calibrator) {
  auto object = Napi::Object::New(env);
  for (const auto& [method, name] : kCalibrationMethodNames) {
    if (method == calibrator.method) object.Set("method", name);
  }
  object.Set("scale", calibrator.scale);
  object.Set("bias", calibrator.bias);
  object.Set("knotLogits", to_number_array(env, calibrator.knot_logits));
  object.Set("knotProbabilities", to_number_array(env, calibrator.knot_probabilities));
  return object;
}

Napi::Object to_raw_reliability_curve(Napi::Env env, const ReliabilityCurve& curve) {
  auto object = Napi::Object::New(env);
  object.Set("rows", to_number_array(env, curve.rows));
  object.Set("weight", to_number_array(env, curve.weight));
  object.Set("predicted", to_number_array(env, curve.predicted));
  object.Set("positive", to_number_array(env, curve.positive));
  object.Set("ece", curve.ece);
  return object;
}

torch::Tensor to_group_ids(const Napi::Value& value) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array) {
    throw_invalid("groups must be a BigInt64Array");
  }
  const auto array = value.As<Napi::TypedArrayOf<int64_t>>();
  auto ids = torch::empty({static_cast<int64_t>(array.ElementLength())}, torch::kLong);
  if (ids.numel() > 0) std::memcpy(ids.data_ptr<int64_t>(), array.Data(), sizeof(int64_t) * array.ElementLength());
  return ids;
}

std::vector<torch::Tensor> to_float_arrays(const Napi::Value& value, const std::string& field) {
  if (!value.IsArray()) throw_invalid(field + " must be an array of Float32Array");
  const auto array = value.As<Napi::Array>();
  std::vector<torch::Tensor> result;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const std::string item_field = field + "[" + std::to_string(i) + "]";
    const auto item = typed_array_of<Napi::Float32Array>(array.Get(i), napi_float32_array, item_field, "Float32Array");
    result.push_back(float_tensor(item, item_field, {static_cast<int64_t>(item.ElementLength())}));
  }
  return result;
}

std::map<std::string, torch::Tensor> to_tensor_map(const Napi::Value& value) {
  if (!value.IsObject()) throw_invalid("state dict must be an object of tensors");
  const auto object = value.As<Napi::Object>();
  const auto names = object.GetPropertyNames();
  std::map<std::string, torch::Tensor> tensors;
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    auto tensor = to_tensor(object.Get(name), name);
    if (tensor.scalar_type() != torch::kFloat32) throw_invalid(name + ".data must be a Float32Array");
    tensors[name] = std::move(tensor);
  }
  return tensors;
}

Napi::Float32Array to_float32_array(Napi::Env env, const torch::Tensor& tensor) {
  const auto values = tensor.to(torch::kCPU, torch::kFloat32).contiguous();
  auto array = Napi::Float32Array::New(env, static_cast<size_t>(values.numel()));
  if (values.numel() > 0) std::memcpy(array.Data(), values.data_ptr<float>(), sizeof(float) * values.numel());
  return array;
}

namespace {

Napi::Object shaped(Napi::Env env, const torch::Tensor& tensor) {
  auto object = Napi::Object::New(env);
  auto shape = Napi::Array::New(env, static_cast<size_t>(tensor.dim()));
  for (int64_t d = 0; d < tensor.dim(); ++d)
    shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, tensor.size(d)));
  object.Set("shape", shape);
  return object;
}

}  // namespace

Napi::Object to_raw_tensor(Napi::Env env, const torch::Tensor& tensor) {
  auto object = shaped(env, tensor);
  object.Set("data", to_float32_array(env, tensor));
  return object;
}

Napi::Object to_typed_tensor(Napi::Env env, const torch::Tensor& tensor) {
  auto value = tensor.detach().to(torch::kCPU).contiguous();
  auto object = shaped(env, value);
  const auto count = static_cast<size_t>(value.numel());
  std::string dtype;
  Napi::Value data;
  switch (value.scalar_type()) {
    case torch::kFloat64: {
      auto array = Napi::Float64Array::New(env, count);
      std::memcpy(array.Data(), value.data_ptr(), count * sizeof(double));
      data = array, dtype = "float64";
      break;
    }
    case torch::kInt64: {
      auto array = Napi::BigInt64Array::New(env, count);
      std::memcpy(array.Data(), value.data_ptr(), count * sizeof(int64_t));
      data = array, dtype = "int64";
      break;
    }
    case torch::kInt32: {
      auto array = Napi::Int32Array::New(env, count);
      std::memcpy(array.Data(), value.data_ptr(), count * sizeof(int32_t));
      data = array, dtype = "int32";
      break;
    }
    case torch::kBool:
    case torch::kUInt8: {
      auto array = Napi::Uint8Array::New(env, count);
      std::memcpy(array.Data(), value.to(torch::kUInt8).data_ptr(), count);
      data = array, dtype = value.scalar_type() == torch::kBool ? "bool" : "uint8";
      break;
    }
    default: {
      data = to_float32_array(env, value);
      dtype = "float32";
    }
  }
  object.Set("data", data);
  object.Set("dtype", dtype);
  return object;
}

Napi::Object to_raw_tensor_map(Napi::Env env, const std::map<std::string, torch::Tensor>& tensors) {
  auto object = Napi::Object::New(env);
  for (const auto& item : tensors) object.Set(item.first, to_raw_tensor(env, item.second));
  return object;
}

}  // namespace adatt::binding
