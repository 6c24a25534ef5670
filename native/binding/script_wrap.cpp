#include "script_wrap.h"

#include <cstring>

#include "adatt/errors.h"
#include "addon_data.h"
#include "convert.h"
#include "errors.h"

namespace adatt::binding {
namespace {

// Converts a JS value to the IValue the method's schema expects at that position.
c10::IValue js_to_ivalue(const Napi::Value& value, const c10::TypePtr& type, const std::string& field) {
  using c10::TypeKind;
  switch (type->kind()) {
    case TypeKind::TensorType: return to_tensor(value, field);
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
      if (dict_type->getKeyType()->kind() != TypeKind::StringType)
        throw_invalid(field + ": only str-keyed dicts are supported");
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

Napi::Value ivalue_to_js(Napi::Env env, const c10::IValue& value) {
  if (value.isTensor()) return to_typed_tensor(env, value.toTensor());
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
  auto methods = shared_methods();
  for (auto method : {
           InstanceMethod<&AddonScriptModule::Methods>("methods"),
           InstanceMethod<&AddonScriptModule::Run>("run"),
           InstanceMethod<&AddonScriptModule::Configure>("configure"),
           InstanceMethod<&AddonScriptModule::Save>("save"),
       }) {
    methods.push_back(method);
  }
  return DefineClass(env, "ScriptModule", methods);
}

AddonScriptModule::AddonScriptModule(const Napi::CallbackInfo& info)
    : TaskModelWrap(info, NativeClass::ScriptModule, "the TorchScript module") {
  guarded(info.Env(), [&] {
    if (!info[0].IsExternal()) throw_invalid("use loadScript(path, device) to create a ScriptModule");
    adopt(info, *info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data());
  });
}

std::shared_ptr<ModelState> AddonScriptModule::state_of(const Napi::Object& object) { return Unwrap(object)->live(); }

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
      const Fields task(task_values.As<Napi::Array>().Get(i), "tasks[" + std::to_string(i) + "]");
      tasks.push_back({task.string("name"), task.integer("outputs")});
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

Napi::Value LoadScript(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw_invalid("path must be a string");
    const std::string device = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "cpu";
    return (new LoadWorker(info.Env(), info[0].As<Napi::String>().Utf8Value(), to_device(device)))->Start();
  });
}

}  // namespace adatt::binding
