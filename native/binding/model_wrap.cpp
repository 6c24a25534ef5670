#include "model_wrap.h"

#include "adatt/calibration.h"
#include "adatt/errors.h"
#include "adatt/expert_health.h"
#include "adatt/trainer.h"
#include "adatt/weights_io.h"
#include "addon_data.h"
#include "convert.h"
#include "dataset_wrap.h"
#include "errors.h"
#include "script_wrap.h"

namespace adatt::binding {
namespace {

WeightLayout to_layout(const Napi::Value& value) {
  const std::string name = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (name == "reference") return WeightLayout::Reference;
  if (name == "native") return WeightLayout::Native;
  throw_invalid("layout must be 'reference' or 'native'");
}

std::string to_path(const Napi::Value& value) {
  if (!value.IsString() || value.As<Napi::String>().Utf8Value().empty())
    throw_invalid("path must be a non-empty string");
  return value.As<Napi::String>().Utf8Value();
}

}  // namespace

namespace {

// What forward returns instead of the raw outputs: per task its predictions (adatt::calibrated_predictions).
struct PredictionSpec {
  std::vector<TaskType> types;
  std::vector<std::optional<Calibrator>> calibrators;
};

class ForwardWorker : public ModelWorker {
 public:
  ForwardWorker(Napi::Env env, std::shared_ptr<ModelState> state, Batch batch, bool gates,
                std::optional<PredictionSpec> predictions = std::nullopt)
      : ModelWorker(env, std::move(state), Access::Read),
        batch_(std::move(batch)),
        gates_(gates),
        predictions_(std::move(predictions)) {}

 protected:
  void Run() override {
    model().check_batch(batch_);
    c10::InferenceMode inference;
    const Batch on_device = batch_.to(state().device);
    outputs_ = gates_ ? model().gate_weights(on_device) : model().forward(on_device);
    for (size_t t = 0; t < outputs_.size(); ++t) {
      auto& output = outputs_[t];
      if (predictions_) output = calibrated_predictions(predictions_->types[t], output, predictions_->calibrators[t]);
      output = output.to(torch::kCPU).contiguous();
    }
  }

  Napi::Value Resolve(Napi::Env env) override {
    auto result = Napi::Array::New(env, outputs_.size());
    for (size_t i = 0; i < outputs_.size(); ++i) {
      if (!gates_) {
        result.Set(static_cast<uint32_t>(i), to_float32_array(env, outputs_[i]));
        continue;
      }
      auto level = Napi::Object::New(env);
      level.Set("gates", Napi::Number::New(env, outputs_[i].size(0)));
      level.Set("experts", Napi::Number::New(env, outputs_[i].size(1)));
      level.Set("data", to_float32_array(env, outputs_[i]));
      result.Set(static_cast<uint32_t>(i), level);
    }
    return result;
  }

 private:
  Batch batch_;
  bool gates_;
  std::optional<PredictionSpec> predictions_;
  std::vector<torch::Tensor> outputs_;
};

// Expert health sums over rows of a dataset (adatt::expert_activity).
class ExpertActivityWorker : public ModelWorker {
 public:
  ExpertActivityWorker(Napi::Env env, std::shared_ptr<ModelState> state, std::shared_ptr<const Dataset> dataset,
                       torch::Tensor rows, int64_t batch_size)
      : ModelWorker(env, std::move(state), Access::Read),
        dataset_(std::move(dataset)),
        rows_(std::move(rows)),
        batch_size_(batch_size) {}

 protected:
  void Run() override { activity_ = expert_activity(model(), *dataset_, rows_, batch_size_, state().device); }

  Napi::Value Resolve(Napi::Env env) override {
    auto levels = Napi::Array::New(env, activity_.levels.size());
    for (size_t i = 0; i < activity_.levels.size(); ++i) {
      const auto& sums = activity_.levels[i];
      auto level = Napi::Object::New(env);
      if (sums.gate_sum.defined()) level.Set("gateSum", to_raw_tensor(env, sums.gate_sum));
      level.Set("zeroCount", to_raw_tensor(env, sums.zero_count));
      level.Set("activeRows", to_raw_tensor(env, sums.active_rows));
      level.Set("normSum", to_raw_tensor(env, sums.norm_sum));
      levels.Set(static_cast<uint32_t>(i), level);
    }
    auto result = Napi::Object::New(env);
    result.Set("rows", Napi::Number::New(env, static_cast<double>(activity_.rows)));
    result.Set("levels", levels);
    return result;
  }

 private:
  std::shared_ptr<const Dataset> dataset_;
  torch::Tensor rows_;
  int64_t batch_size_;
  adatt::ExpertActivity activity_;
};

class GradientsWorker : public ModelWorker {
 public:
  GradientsWorker(Napi::Env env, std::shared_ptr<ModelState> state, Batch batch, std::vector<torch::Tensor> seeds)
      : ModelWorker(env, std::move(state), Access::Write), batch_(std::move(batch)), seeds_(std::move(seeds)) {}

 protected:
  void Run() override {
    model().check_batch(batch_);
    std::vector<torch::Tensor> seeds;
    for (const auto& seed : seeds_) seeds.push_back(seed.to(state().device));
    gradients_ = model().seeded_gradients(batch_.to(state().device), seeds);
  }

  Napi::Value Resolve(Napi::Env env) override { return to_raw_tensor_map(env, gradients_); }

 private:
  Batch batch_;
  std::vector<torch::Tensor> seeds_;
  std::map<std::string, torch::Tensor> gradients_;
};

class StateDictWorker : public ModelWorker {
 public:
  StateDictWorker(Napi::Env env, std::shared_ptr<ModelState> state, WeightLayout layout, std::string path)
      : ModelWorker(env, std::move(state), Access::Read), layout_(layout), path_(std::move(path)) {}

 protected:
  void Run() override {
    tensors_ = model().export_tensors(layout_);
    if (!path_.empty()) save_tensor_file(path_, tensors_);
  }

  Napi::Value Resolve(Napi::Env env) override {
    return path_.empty() ? Napi::Value(to_raw_tensor_map(env, tensors_)) : env.Undefined();
  }

 private:
  WeightLayout layout_;
  std::string path_;  // empty: return the tensors instead of writing them
  std::map<std::string, torch::Tensor> tensors_;
};

class LoadStateWorker : public ModelWorker {
 public:
  LoadStateWorker(Napi::Env env, std::shared_ptr<ModelState> state, std::map<std::string, torch::Tensor> tensors,
                  std::string path, bool strict)
      : ModelWorker(env, std::move(state), Access::Write),
        tensors_(std::move(tensors)),
        path_(std::move(path)),
        strict_(strict) {}

 protected:
  void Run() override {
    if (!path_.empty()) tensors_ = load_tensor_file(path_);
    model().import_tensors(tensors_, strict_);
  }

 private:
  std::map<std::string, torch::Tensor> tensors_;
  std::string path_;  // non-empty: read the tensors from this file
  bool strict_;
};

bool to_strict(const Napi::Value& value) {
  if (!value.IsBoolean()) throw_invalid("strict must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

}  // namespace

Napi::Function AddonModel::Define(Napi::Env env) {
  auto methods = shared_methods();
  for (auto method : {
           InstanceMethod<&AddonModel::Forward>("forward"),
           InstanceMethod<&AddonModel::GateWeights>("gateWeights"),
           InstanceMethod<&AddonModel::ExpertActivity>("expertActivity"),
           InstanceMethod<&AddonModel::Gradients>("gradients"),
           InstanceMethod<&AddonModel::StateDict>("stateDict"),
           InstanceMethod<&AddonModel::LoadStateDict>("loadStateDict"),
           InstanceMethod<&AddonModel::SaveWeights>("saveWeights"),
           InstanceMethod<&AddonModel::LoadWeights>("loadWeights"),
       }) {
    methods.push_back(method);
  }
  return DefineClass(env, "Model", methods);
}

AddonModel::AddonModel(const Napi::CallbackInfo& info) : TaskModelWrap(info, NativeClass::Model, "the model") {
  guarded(info.Env(), [&] {
    if (!info[0].IsObject()) throw_invalid("Model needs a config object");
    adopt(info, std::make_shared<ModelState>(to_model_config(info[0].As<Napi::Object>())));
  });
}

std::shared_ptr<ModelState> AddonModel::state_of(const Napi::Value& value, const std::string& field) {
  if (is_native(value, NativeClass::Model)) return Unwrap(value.As<Napi::Object>())->live();
  if (is_native(value, NativeClass::ScriptModule)) return AddonScriptModule::state_of(value.As<Napi::Object>());
  throw_invalid(field + " must be a Model or a ScriptModule");
}

Napi::Value AddonModel::Forward(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto state = live();
    auto batch = to_batch(info[0], state->model->config());
    std::optional<PredictionSpec> predictions;
    if (info[2].IsObject()) {
      const auto spec = info[2].As<Napi::Object>();
      auto types = to_task_types(spec.Get("taskTypes"));
      if (types.size() != state->model->config().tasks.size()) throw_invalid("taskTypes needs one entry per task");
      auto calibrators = to_calibrators(spec.Get("calibrators"), types.size());
      predictions = PredictionSpec{std::move(types), std::move(calibrators)};
    }
    auto* worker = new ForwardWorker(info.Env(), state, std::move(batch), false, std::move(predictions));
    // The worker holds its lease now: no move can change the device meanwhile.
    return info[1].ToBoolean().Value() && state->device.is_cpu() ? worker->RunInline() : worker->Start();
  });
}

Napi::Value AddonModel::ExpertActivity(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto state = live();
    auto dataset = AddonDataset::from_value(info[0], "dataset");
    if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw_invalid("rows must be an Int32Array");
    }
    const auto rows_array = info[1].As<Napi::Int32Array>();
    auto rows = torch::from_blob(const_cast<int32_t*>(rows_array.Data()),
                                 {static_cast<int64_t>(rows_array.ElementLength())}, torch::kInt32)
                    .to(torch::kLong);
    if (!info[2].IsNumber()) throw_invalid("batchSize must be a number");
    const int64_t batch_size = info[2].As<Napi::Number>().Int64Value();
    return (new ExpertActivityWorker(info.Env(), state, dataset, std::move(rows), batch_size))->Start();
  });
}

Napi::Value AddonModel::GateWeights(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto state = live();
    auto batch = to_batch(info[0], state->model->config());
    return (new ForwardWorker(info.Env(), state, std::move(batch), true))->Start();
  });
}

Napi::Value AddonModel::Gradients(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto state = live();
    auto batch = to_batch(info[0], state->model->config());
    auto seeds = to_float_arrays(info[1], "seeds");
    return (new GradientsWorker(info.Env(), state, std::move(batch), std::move(seeds)))->Start();
  });
}

Napi::Value AddonModel::StateDict(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    return (new StateDictWorker(info.Env(), live(), to_layout(info[0]), ""))->Start();
  });
}

Napi::Value AddonModel::SaveWeights(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    return (new StateDictWorker(info.Env(), live(), to_layout(info[1]), to_path(info[0])))->Start();
  });
}

Napi::Value AddonModel::LoadStateDict(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto state = live();
    return (new LoadStateWorker(info.Env(), state, to_tensor_map(info[0]), "", to_strict(info[1])))->Start();
  });
}

Napi::Value AddonModel::LoadWeights(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    return (new LoadStateWorker(info.Env(), live(), {}, to_path(info[0]), to_strict(info[1])))->Start();
  });
}

}  // namespace adatt::binding
