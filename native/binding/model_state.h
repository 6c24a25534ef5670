// What the two model wrappers (Model, ScriptModule) share: the model state their JS objects and
// workers hold, the lease that keeps writes apart from reads, and the operations both offer
// (evaluate / predict over a dataset, moving to a device).
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "adatt/model.h"
#include "adatt/script_model.h"
#include "addon_data.h"
#include "errors.h"
#include "external_memory.h"
#include "worker.h"

namespace adatt::binding {

// Shared by the JS object and the workers of its operations, so dispose() during an operation
// frees the model once that operation is done.
struct ModelState {
  explicit ModelState(ModelConfig config) : model(std::move(config)), task(model.ptr()) {}
  explicit ModelState(std::shared_ptr<ScriptTaskModel> script_model) : script(script_model), task(script_model) {}
  MultiTaskModel model{nullptr};            // a native model, or
  std::shared_ptr<ScriptTaskModel> script;  // a TorchScript module
  std::shared_ptr<TaskModel> task;          // either, as the trainer sees it
  torch::Device device{torch::kCPU};
  // Accessed on the JS thread only: reads may overlap each other, a write runs alone.
  int readers = 0;
  bool writer = false;
};

enum class Access { Read, Write };

// Held by a worker for the length of its operation; released on the JS thread when it is destroyed.
class OperationLease {
 public:
  OperationLease(std::shared_ptr<ModelState> state, Access access);
  ~OperationLease();
  OperationLease(const OperationLease&) = delete;
  OperationLease& operator=(const OperationLease&) = delete;
  ModelState& operator*() const { return *state_; }
  ModelState* operator->() const { return state_.get(); }

 private:
  std::shared_ptr<ModelState> state_;
  Access access_;
};

// A model operation run off the event loop with a lease on the model.
class ModelWorker : public PromiseWorker {
 public:
  ModelWorker(Napi::Env env, std::shared_ptr<ModelState> state, Access access)
      : PromiseWorker(env), lease_(std::move(state), access), access_(access) {}

 protected:
  // Reads of a native model may overlap one another (the lease keeps writes out), so they run on the
  // inference threads. A TorchScript module runs one call at a time: its methods and mode switches
  // may change its attributes.
  Runs runs() const override {
    return access_ == Access::Read && !lease_->script ? Runs::OnInferenceThreads : Runs::OnComputeThread;
  }
  ModelState& state() { return *lease_; }
  MultiTaskModelImpl& model() { return *lease_->model; }
  TaskModel& task_model() { return *lease_->task; }

 private:
  OperationLease lease_;
  Access access_;
};

// Parses 'cpu' / 'cuda[:i]' and checks that the device exists.
torch::Device to_device(const std::string& name);

// evaluate(dataset, { batchSize, taskTypes }) and predict(…, rawOutputs?) for any model kind.
Napi::Value start_dataset_worker(const Napi::CallbackInfo& info, std::shared_ptr<ModelState> state, bool metrics);
// to(device) for any model kind.
Napi::Value start_move_worker(const Napi::CallbackInfo& info, std::shared_ptr<ModelState> state);

// The JS class half that Model and ScriptModule share (RawTaskModel in lib/addon.ts): the state,
// its memory accounting, the type tag, and to / device / parameterCount / evaluate / predict /
// dispose. `Wrapper` is the derived class (node-addon-api's ObjectWrap is per class).
template <typename Wrapper>
class TaskModelWrap : public Napi::ObjectWrap<Wrapper> {
 protected:
  using Method = Napi::Value (Wrapper::*)(const Napi::CallbackInfo&);

  TaskModelWrap(const Napi::CallbackInfo& info, NativeClass kind, const char* what)
      : Napi::ObjectWrap<Wrapper>(info), kind_(kind), what_(what) {}

  // The end of a successful constructor: from now on the JS object is this class's.
  void adopt(const Napi::CallbackInfo& info, std::shared_ptr<ModelState> state) {
    state_ = std::move(state);
    memory_.track(info.Env(), tensor_bytes(state_->task->trainable_parameters()));
    tag_as(info.This().As<Napi::Object>(), kind_);
  }

  // The methods both classes define, for their DefineClass lists.
  static std::vector<typename Napi::ObjectWrap<Wrapper>::PropertyDescriptor> shared_methods() {
    return {
        Napi::ObjectWrap<Wrapper>::InstanceMethod("to", static_cast<Method>(&TaskModelWrap::To)),
        Napi::ObjectWrap<Wrapper>::InstanceMethod("device", static_cast<Method>(&TaskModelWrap::Device)),
        Napi::ObjectWrap<Wrapper>::InstanceMethod("parameterCount",
                                                  static_cast<Method>(&TaskModelWrap::ParameterCount)),
        Napi::ObjectWrap<Wrapper>::InstanceMethod("evaluate", static_cast<Method>(&TaskModelWrap::Evaluate)),
        Napi::ObjectWrap<Wrapper>::InstanceMethod("predict", static_cast<Method>(&TaskModelWrap::Predict)),
        Napi::ObjectWrap<Wrapper>::InstanceMethod("dispose", static_cast<Method>(&TaskModelWrap::Dispose)),
    };
  }

  std::shared_ptr<ModelState> live() const {
    if (!state_) throw DisposedError(what_);
    return state_;
  }

 private:
  Napi::Value To(const Napi::CallbackInfo& info) {
    return start_worker(info.Env(), [&]() -> Napi::Value { return start_move_worker(info, live()); });
  }
  Napi::Value Device(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), live()->device.str()); });
  }
  Napi::Value ParameterCount(const Napi::CallbackInfo& info) {
    return guarded(info.Env(), [&]() -> Napi::Value {
      const auto state = live();
      const auto count = state->script ? state->script->parameter_count() : state->model->parameter_count();
      return Napi::Number::New(info.Env(), static_cast<double>(count));
    });
  }
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    return start_worker(info.Env(), [&]() -> Napi::Value { return start_dataset_worker(info, live(), true); });
  }
  Napi::Value Predict(const Napi::CallbackInfo& info) {
    return start_worker(info.Env(), [&]() -> Napi::Value { return start_dataset_worker(info, live(), false); });
  }
  // Running workers keep their own reference; the model is freed when the last one finishes.
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    state_.reset();
    memory_.release();
    return info.Env().Undefined();
  }

  NativeClass kind_;
  const char* what_;
  std::shared_ptr<ModelState> state_;
  ExternalMemory memory_;
};

}  // namespace adatt::binding
