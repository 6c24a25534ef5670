#include "script_wrap.h"

#include <cstring>

#include "adatt/errors.h"
#include "addon_data.h"
#include "convert.h"
#include "errors.h"

namespace adatt::binding {
namespace {

// A JS tensor is { shape: number[], data: TypedArray, dtype?: 'int64' | … }; without dtype the
// typed array's kind decides (Float32Array -> float32, Int32Array -> int32, BigInt64Array -> int64…).
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

torch::Tensor js_to_tensor(const Napi::Value& value, const std::string& field) {
  if (!value.IsObject()) throw_invalid(field + " must be a tensor { shape, data }");
  const auto object = value.As<Napi::Object>();
  const auto data = object.Get("data");
  if (!data.IsTypedArray()) throw_invalid(field + ".data must be a typed array");
  const auto array = data.As<Napi::TypedArray>();
  const auto source = dtype_of(array.TypedArrayType(), field);
  std::vector<int64_t> shape;
  const auto shape_value = object.Get("shape");
  if (!shape_value.IsArray()) throw_invalid(field + ".shape must be an array");
  int64_t count = 1;
  for (uint32_t i = 0; i < shape_value.As<Napi::Array>().Length(); ++i) {
    const auto extent = shape_value.As<Napi::Array>().Get(i);
    if (!extent.IsNumber() || extent.As<Napi::Number>().Int64Value() < 0) throw_invalid(field + ".shape is invalid");
    shape.push_back(extent.As<Napi::Number>().Int64Value());
    count *= shape.back();
  }
  if (count != static_cast<int64_t>(array.ElementLength())) {
    throw_invalid(field + ".data has " + std::to_string(array.ElementLength()) + " values for a shape of " +
                  std::to_string(count));
  }
  auto tensor = torch::empty(shape, source);
  if (count > 0) {
    std::memcpy(tensor.data_ptr(), static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset(),
                array.ByteLength());
  }
  const auto dtype = object.Get("dtype");
  if (dtype.IsString()) tensor = tensor.to(named_dtype(dtype.As<Napi::String>().Utf8Value(), field));
  return tensor;
}

// Converts a JS value to the IValue the method's schema expects at that position.
c10::IValue js_to_ivalue(const Napi::Value& value, const c10::TypePtr& type, const std::string& field) {
  using c10::TypeKind;
  switch (type->kind()) {
    case TypeKind::TensorType: return js_to_tensor(value, field);
    case TypeKind::OptionalType:
      if (value.IsNull() || value.IsUndefined()) return c10::IValue();
      return js_to_ivalue(value, type->castRaw<c10::OptionalType>()->getElementType(), field);
    case TypeKind::IntType:
      if (!value.IsNumber()) throw_invalid(field + " must be an integer");
      return value.As<Napi::Number>().Int64Value();
    case TypeKind::FloatType:
      if (!value.IsNumber()) throw_invalid(field + " must be a number");
      return value.As<Napi::Number>().DoubleValue();
    case TypeKind::BoolType:
      if (!value.IsBoolean()) throw_invalid(field + " must be a boolean");
      return value.As<Napi::Boolean>().Value();
    case TypeKind::StringType:
      if (!value.IsString()) throw_invalid(field + " must be a string");
      return value.As<Napi::String>().Utf8Value();
    case TypeKind::ListType: {
      if (!value.IsArray()) throw_invalid(field + " must be an array");
      const auto element = type->castRaw<c10::ListType>()->getElementType();
      c10::impl::GenericList list(element);
      const auto array = value.As<Napi::Array>();
      for (uint32_t i = 0; i < array.Length(); ++i) {
        list.push_back(js_to_ivalue(array.Get(i), element, field + "[" + std::to_string(i) + "]"));
      }
      return list;
    }
    case TypeKind::TupleType: {
      const auto elements = type->castRaw<c10::TupleType>()->elements();
      if (!value.IsArray() || value.As<Napi::Array>().Length() != elements.size()) {
        throw_invalid(field + " must be an array of " + std::to_string(elements.size()) + " items (a tuple)");
      }
      std::vector<c10::IValue> items;
      for (size_t i = 0; i < elements.size(); ++i) {
        items.push_back(js_to_ivalue(value.As<Napi::Array>().Get(static_cast<uint32_t>(i)), elements[i],
                                     field + "[" + std::to_string(i) + "]"));
      }
      return c10::ivalue::Tuple::create(std::move(items));
    }
    case TypeKind::DictType: {
      const auto* dict_type = type->castRaw<c10::DictType>();
      if (dict_type->getKeyType()->kind() != TypeKind::StringType) throw_invalid(field + ": only str-keyed dicts are supported");
      if (!value.IsObject()) throw_invalid(field + " must be an object");
      c10::impl::GenericDict dict(dict_type->getKeyType(), dict_type->getValueType());
      const auto object = value.As<Napi::Object>();
      const auto names = object.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); ++i) {
        const std::string key = names.Get(i).As<Napi::String>().Utf8Value();
        dict.insert(key, js_to_ivalue(object.Get(key), dict_type->getValueType(), field + "." + key));
      }
      return dict;
    }
    default: throw_invalid(field + ": arguments of type " + type->str() + " are not supported");
  }
}

Napi::Value tensor_to_js(Napi::Env env, const torch::Tensor& tensor) {
  auto value = tensor.detach().to(torch::kCPU).contiguous();
  auto object = Napi::Object::New(env);
  auto shape = Napi::Array::New(env, static_cast<size_t>(value.dim()));
  for (int64_t d = 0; d < value.dim(); ++d) shape.Set(static_cast<uint32_t>(d), Napi::Number::New(env, value.size(d)));
  object.Set("shape", shape);
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

Napi::Value ivalue_to_js(Napi::Env env, const c10::IValue& value) {
  if (value.isTensor()) return tensor_to_js(env, value.toTensor());
  if (value.isNone()) return env.Null();
  if (value.isBool()) return Napi::Boolean::New(env, value.toBool());
  if (value.isInt()) return Napi::Number::New(env, static_cast<double>(value.toInt()));
  if (value.isDouble()) return Napi::Number::New(env, value.toDouble());
  if (value.isString()) return Napi::String::New(env, value.toStringRef());
  if (value.isTuple() || value.isList()) {
    const auto items = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
    auto array = Napi::Array::New(env, items.size());
    for (size_t i = 0; i < items.size(); ++i) array.Set(static_cast<uint32_t>(i), ivalue_to_js(env, items[i]));
    return array;
  }
  if (value.isGenericDict()) {
    auto object = Napi::Object::New(env);
    for (const auto& item : value.toGenericDict()) {
      const auto& key = item.key();
      const std::string name = key.isString() ? key.toStringRef() : key.isInt() ? std::to_string(key.toInt()) : "?";
      object.Set(name, ivalue_to_js(env, item.value()));
    }
    return object;
  }
  throw InvalidArgument("TorchScript returned a value of type " + value.tagKind() + " that cannot be converted");
}

class RunWorker : public ModelWorker {
 public:
  RunWorker(Napi::Env env, std::shared_ptr<ModelState> state, std::string method, std::vector<c10::IValue> args)
      : ModelWorker(env, std::move(state), Access::Read), method_(std::move(method)), args_(std::move(args)) {}

 protected:

  void Run() override {
    EvaluationGuard no_autograd(*state().script);
    for (auto& arg : args_) {
      if (arg.isTensor()) arg = arg.toTensor().to(state().device);
    }
    result_ = state().script->module().get_method(method_)(args_);
  }
  Napi::Value Resolve(Napi::Env env) override { return ivalue_to_js(env, result_); }

 private:
  std::string method_;
  std::vector<c10::IValue> args_;
  c10::IValue result_;
};

class SaveWorker : public ModelWorker {
 public:
  SaveWorker(Napi::Env env, std::shared_ptr<ModelState> state, std::string path)
      : ModelWorker(env, std::move(state), Access::Read), path_(std::move(path)) {}

 protected:
  void Run() override { state().script->save(path_); }

 private:
  std::string path_;
};

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, torch::Device device)
      : PromiseWorker(env), path_(std::move(path)), device_(device) {}

 protected:
  void Run() override { script_ = ScriptTaskModel::load(path_, device_); }
  Napi::Value Resolve(Napi::Env env) override {
    auto state = std::make_shared<ModelState>(script_);
    state->device = device_;
    auto external = Napi::External<std::shared_ptr<ModelState>>::New(
        env, new std::shared_ptr<ModelState>(std::move(state)),
        [](Napi::Env, std::shared_ptr<ModelState>* data) { delete data; });
    return addon_data(env).script_class.New({external});
  }

 private:
  std::string path_;
  torch::Device device_;
  std::shared_ptr<ScriptTaskModel> script_;
};

}  // namespace

Napi::Function AddonScriptModule::Define(Napi::Env env) {
  return DefineClass(env, "ScriptModule",
                     {
                         InstanceMethod<&AddonScriptModule::Methods>("methods"),
                         InstanceMethod<&AddonScriptModule::Run>("run"),
                         InstanceMethod<&AddonScriptModule::Configure>("configure"),
                         InstanceMethod<&AddonScriptModule::Save>("save"),
                         InstanceMethod<&AddonScriptModule::To>("to"),
                         InstanceMethod<&AddonScriptModule::Device>("device"),
                         InstanceMethod<&AddonScriptModule::ParameterCount>("parameterCount"),
                         InstanceMethod<&AddonScriptModule::Evaluate>("evaluate"),
                         InstanceMethod<&AddonScriptModule::Predict>("predict"),
                         InstanceMethod<&AddonScriptModule::Dispose>("dispose"),
                     });
}

AddonScriptModule::AddonScriptModule(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonScriptModule>(info) {
  guarded(info.Env(), [&] {
    if (!info[0].IsExternal()) throw_invalid("use loadScript(path, device) to create a ScriptModule");
    state_ = *info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data();
    memory_.track(info.Env(), tensor_bytes(state_->task->trainable_parameters()));
  });
}

std::shared_ptr<ModelState> AddonScriptModule::state_of(const Napi::Object& object) { return Unwrap(object)->live(); }

std::shared_ptr<ModelState> AddonScriptModule::live() const {
  if (!state_) throw DisposedError("the TorchScript module");
  return state_;
}

Napi::Value AddonScriptModule::Methods(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto names = Napi::Array::New(info.Env());
    uint32_t i = 0;
    for (const auto& method : live()->script->module().get_methods()) names.Set(i++, method.name());
    return names;
  });
}

Napi::Value AddonScriptModule::Run(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto state = live();
    if (!info[0].IsString()) throw_invalid("method must be a string");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    const auto method = state->script->module().find_method(name);
    if (!method) throw_invalid("the TorchScript module has no method '" + name + "'");
    const auto& schema = method->function().getSchema();
    const auto& arguments = schema.arguments();  // arguments[0] is self
    const auto given = info[1].IsArray() ? info[1].As<Napi::Array>() : Napi::Array::New(info.Env());
    if (given.Length() + 1 > arguments.size()) {
      throw_invalid(name + " takes " + std::to_string(arguments.size() - 1) + " arguments, got " +
                    std::to_string(given.Length()));
    }
    std::vector<c10::IValue> args;
    for (size_t i = 1; i < arguments.size(); ++i) {
      const auto& argument = arguments[i];
      if (i - 1 >= given.Length()) {
        if (!argument.default_value()) throw_invalid(name + ": argument '" + argument.name() + "' is missing");
        args.push_back(*argument.default_value());
        continue;
      }
      args.push_back(js_to_ivalue(given.Get(static_cast<uint32_t>(i - 1)), argument.type(), argument.name()));
    }
    return (new RunWorker(info.Env(), state, name, std::move(args)))->Start();
  });
}

Napi::Value AddonScriptModule::Configure(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    auto state = live();
    if (!info[0].IsObject()) throw_invalid("configure needs { inputs, tasks }");
    const auto options = info[0].As<Napi::Object>();
    std::vector<ScriptInput> inputs;
    const auto input_names = options.Get("inputs");
    if (!input_names.IsArray()) throw_invalid("inputs must be an array of 'dense' | 'categorical'");
    for (uint32_t i = 0; i < input_names.As<Napi::Array>().Length(); ++i) {
      const auto item = input_names.As<Napi::Array>().Get(i);
      const std::string name = item.IsString() ? item.As<Napi::String>().Utf8Value() : "";
      if (name == "dense") inputs.push_back(ScriptInput::Dense);
      else if (name == "categorical") inputs.push_back(ScriptInput::Categorical);
      else throw_invalid("inputs[" + std::to_string(i) + "] must be 'dense' or 'categorical'");
    }
    std::vector<TaskSpec> tasks;
    const auto task_values = options.Get("tasks");
    if (!task_values.IsArray()) throw_invalid("tasks must be an array of { name, outputs }");
    for (uint32_t i = 0; i < task_values.As<Napi::Array>().Length(); ++i) {
      const auto task = task_values.As<Napi::Array>().Get(i).As<Napi::Object>();
      tasks.push_back({task.Get("name").As<Napi::String>().Utf8Value(), integer_or(task, "outputs", 1)});
    }
    state->script->configure(std::move(inputs), std::move(tasks));
    return info.Env().Undefined();
  });
}

Napi::Value AddonScriptModule::Save(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw_invalid("path must be a string");
    return (new SaveWorker(info.Env(), live(), info[0].As<Napi::String>().Utf8Value()))->Start();
  });
}

Napi::Value AddonScriptModule::To(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value { return start_move_worker(info, live()); });
}

Napi::Value AddonScriptModule::Device(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), live()->device.str()); });
}

Napi::Value AddonScriptModule::ParameterCount(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(live()->script->parameter_count()));
  });
}

Napi::Value AddonScriptModule::Evaluate(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value { return start_dataset_worker(info, live(), true); });
}

Napi::Value AddonScriptModule::Predict(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value { return start_dataset_worker(info, live(), false); });
}

Napi::Value AddonScriptModule::Dispose(const Napi::CallbackInfo& info) {
  state_.reset();
  memory_.release();
  return info.Env().Undefined();
}

Napi::Value LoadScript(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw_invalid("path must be a string");
    const std::string device = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "cpu";
    return (new LoadWorker(info.Env(), info[0].As<Napi::String>().Utf8Value(), to_device(device)))->Start();
  });
}

}  // namespace adatt::binding
