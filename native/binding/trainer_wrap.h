// JS class `Trainer` of the raw addon: optimizer state and the native inner loop of one model.
#pragma once

#include <napi.h>

#include <atomic>
#include <memory>

#include "adatt/trainer.h"
#include "model_state.h"

namespace adatt::binding {

struct TrainerState {
  TrainerState(std::shared_ptr<ModelState> model_state, TrainerOptions options)
      : model(std::move(model_state)), trainer(model->task, std::move(options)) {}
  std::shared_ptr<ModelState> model;
  Trainer trainer;
  std::atomic<bool> abort{false};
  std::shared_ptr<Communicator> communicator;  // data-parallel training when set
  bool joined = false;                         // parameters broadcast from rank 0 yet?
};

class AddonTrainer : public Napi::ObjectWrap<AddonTrainer> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AddonTrainer(const Napi::CallbackInfo& info);

 private:
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info);
  Napi::Value Abort(const Napi::CallbackInfo& info);
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value LearningRate(const Napi::CallbackInfo& info);
  Napi::Value TaskWeights(const Napi::CallbackInfo& info);
  Napi::Value SetTaskWeights(const Napi::CallbackInfo& info);
  Napi::Value SaveState(const Napi::CallbackInfo& info);
  Napi::Value LoadState(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  std::shared_ptr<TrainerState> live() const;

  std::shared_ptr<TrainerState> state_;
};

}  // namespace adatt::binding
