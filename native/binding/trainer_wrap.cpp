#include "trainer_wrap.h"

#include <cstring>
#include <initializer_list>
#include <optional>
#include <utility>

#include "adatt/errors.h"
#include "convert.h"
#include "dataset_wrap.h"
#include "distributed_wrap.h"
#include "errors.h"
#include "model_wrap.h"

namespace adatt::binding {
namespace {

// The enum named `name` among `choices` (the names lib/addon.ts declares for `field`).
template <typename Enum>
Enum to_choice(const std::string& field, const std::string& name,
               std::initializer_list<std::pair<const char*, Enum>> choices) {
  std::string names;
  for (const auto& [text, value] : choices) {
    if (name == text) return value;
    names += (names.empty() ? "" : ", ") + std::string(text);
  }
  throw_invalid("unknown " + field + " '" + name + "' (use " + names + ")");
}

LossKind to_loss(const std::string& name) {
  return to_choice<LossKind>("loss", name,
                             {{"bce", LossKind::BinaryCrossEntropy},
                              {"cross-entropy", LossKind::CrossEntropy},
                              {"mse", LossKind::MeanSquaredError},
                              {"huber", LossKind::Huber}});
}

std::optional<SparseOptimizerOptions> to_embedding_optimizer(const Fields& trainer) {
  const auto spec = trainer.object("embeddingOptimizer");
  const auto type = spec.string("type");
  if (type == "dense") return std::nullopt;
  SparseOptimizerOptions options;
  options.kind = to_choice<SparseOptimizerKind>("embeddingOptimizer.type", type,
                                                {{"adam", SparseOptimizerKind::Adam},
                                                 {"adagrad", SparseOptimizerKind::Adagrad},
                                                 {"rowwise-adagrad", SparseOptimizerKind::RowwiseAdagrad},
                                                 {"sgd", SparseOptimizerKind::Sgd}});
  options.lr = spec.number("lr");
  options.weight_decay = spec.number("weightDecay");
  options.beta1 = spec.number("beta1");
  options.beta2 = spec.number("beta2");
  options.eps = spec.number("eps");
  return options;
}

TrainerOptions to_trainer_options(const Napi::Object& object) {
  TrainerOptions options;
  const Fields trainer(object);
  const auto optimizer = trainer.object("optimizer");
  options.optimizer.kind = to_choice<OptimizerKind>("optimizer", optimizer.string("type"),
                                                    {{"adam", OptimizerKind::Adam},
                                                     {"adamw", OptimizerKind::AdamW},
                                                     {"adagrad", OptimizerKind::Adagrad},
                                                     {"sgd", OptimizerKind::Sgd}});
  options.optimizer.lr = optimizer.number("lr");
  options.optimizer.weight_decay = optimizer.number("weightDecay");
  options.optimizer.momentum = optimizer.number("momentum");
  options.optimizer.beta1 = optimizer.number("beta1");
  options.optimizer.beta2 = optimizer.number("beta2");
  options.optimizer.eps = optimizer.number("eps");
  const auto schedule = trainer.object("schedule");
  options.schedule.kind = to_choice<ScheduleKind>(
      "schedule", schedule.string("type"),
      {{"constant", ScheduleKind::Constant}, {"step", ScheduleKind::Step}, {"cosine", ScheduleKind::Cosine}});
  options.schedule.warmup_steps = schedule.integer("warmupSteps");
  options.schedule.step_size = schedule.integer("stepSize");
  options.schedule.gamma = schedule.number("gamma");
  options.schedule.total_steps = schedule.integer("totalSteps");
  options.schedule.min_lr = schedule.number("minLr");
  options.embedding_optimizer = to_embedding_optimizer(trainer);
  const auto types = to_task_types(object.Get("taskTypes"));
  const auto losses = object.Get("losses");
  if (!losses.IsArray() || losses.As<Napi::Array>().Length() != types.size()) {
    throw_invalid("losses must hold one { loss, weight, huberDelta } per task");
  }
  for (uint32_t t = 0; t < types.size(); ++t) {
    const auto loss = losses.As<Napi::Array>().Get(t);
    const Fields spec(loss, "losses[" + std::to_string(t) + "]");
    options.tasks.push_back({types[t],
                             to_loss(spec.string("loss")),
                             spec.number("weight"),
                             spec.number("huberDelta"),
                             {spec.integer("whereTask"), spec.number("whereEquals")}});
    if (options.tasks.back().space.task >= static_cast<int64_t>(types.size()))
      throw_invalid("losses.whereTask names no task");
  }
  options.weighting = to_choice<TaskWeighting>("taskWeighting", trainer.string("taskWeighting"),
                                               {{"fixed", TaskWeighting::Fixed},
                                                {"uncertainty", TaskWeighting::Uncertainty},
                                                {"gradnorm", TaskWeighting::GradNorm}});
  if (options.weighting == TaskWeighting::GradNorm) {
    options.gradnorm_alpha = trainer.number("gradNormAlpha");
  }
  options.batch_size = trainer.integer("batchSize");
  const int64_t seed = trainer.integer("seed");
  if (seed < 0) throw_invalid("seed must be non-negative");
  options.seed = static_cast<uint64_t>(seed);
  options.clip_norm = trainer.number("clipNorm");
  options.non_finite = to_choice<NonFinitePolicy>("nonFinite", trainer.string("nonFinite"),
                                                  {{"stop", NonFinitePolicy::Stop}, {"skip", NonFinitePolicy::Skip}});
  options.conflict_every = trainer.integer("conflictEvery");
  return options;
}

Napi::Object to_js(Napi::Env env, const StepProgress& p) {
  auto object = Napi::Object::New(env);
  object.Set("epoch", Napi::Number::New(env, static_cast<double>(p.epoch)));
  object.Set("step", Napi::Number::New(env, static_cast<double>(p.step)));
  object.Set("batch", Napi::Number::New(env, static_cast<double>(p.batch)));
  object.Set("batches", Napi::Number::New(env, static_cast<double>(p.batches)));
  object.Set("examples", Napi::Number::New(env, static_cast<double>(p.examples)));
  object.Set("examplesPerSecond", Napi::Number::New(env, p.examples_per_second));
  object.Set("lr", Napi::Number::New(env, p.lr));
  auto loss = Napi::Array::New(env, p.loss.size());
  for (size_t t = 0; t < p.loss.size(); ++t) loss.Set(static_cast<uint32_t>(t), Napi::Number::New(env, p.loss[t]));
  object.Set("loss", loss);
  return object;
}

class EpochWorker : public ModelWorker {
 public:
  EpochWorker(Napi::Env env, std::shared_ptr<TrainerState> trainer, std::shared_ptr<const Dataset> dataset,
              int64_t epoch, EpochPass pass, Napi::Function on_progress, double interval)
      : ModelWorker(env, trainer->model, Access::Write),
        trainer_(std::move(trainer)),
        dataset_(std::move(dataset)),
        epoch_(epoch),
        pass_(pass),
        interval_(interval) {
    if (!on_progress.IsEmpty()) {
      progress_ = Napi::ThreadSafeFunction::New(env, on_progress, "adatt.progress", 0, 1);
    }
  }

  ~EpochWorker() override {
    if (progress_) completions().while_open([this] { progress_.Release(); });
  }

 protected:
  void Run() override {
    std::vector<bool> regression;
    for (const auto& task : trainer_->trainer.options().tasks) regression.push_back(task.type == TaskType::Regression);
    task_model().check_dataset(*dataset_, regression);
    if (trainer_->communicator && !trainer_->joined) {
      trainer_->trainer.set_communicator(trainer_->communicator);  // broadcasts rank 0's parameters
      trainer_->joined = true;
    }
    std::function<void(const StepProgress&)> report;
    if (progress_) {
      report = [this](const StepProgress& p) {
        auto* report = new StepProgress(p);
        const bool queued = completions().while_open([&] {
          if (progress_.NonBlockingCall(report, &EpochWorker::report_progress) != napi_ok) delete report;
        });
        if (!queued) delete report;
      };
    }
    result_ =
        trainer_->trainer.train_epoch(*dataset_, epoch_, state().device, report, trainer_->abort, interval_, pass_);
  }

  // JS thread. An exception from the user's callback stops the run: fit rejects with it.
  static void report_progress(Napi::Env env, Napi::Function callback, StepProgress* data) {
    std::unique_ptr<StepProgress> owned(data);
    if (!can_call_into_js(env) || callback.IsEmpty()) return;
    try {
      callback.Call({to_js(env, *owned)});
    } catch (...) {
      // lib/training/fit.ts wraps the callback, stops the run and rejects fit with the error itself.
    }
  }

  Napi::Value Resolve(Napi::Env env) override {
    auto object = Napi::Object::New(env);
    object.Set("steps", Napi::Number::New(env, static_cast<double>(result_.steps)));
    object.Set("examples", Napi::Number::New(env, static_cast<double>(result_.examples)));
    object.Set("skipped", Napi::Number::New(env, static_cast<double>(result_.skipped)));
    object.Set("seconds", Napi::Number::New(env, result_.seconds));
    object.Set("aborted", Napi::Boolean::New(env, result_.aborted));
    auto loss = Napi::Array::New(env, result_.loss.size());
    for (size_t t = 0; t < result_.loss.size(); ++t) {
      loss.Set(static_cast<uint32_t>(t), Napi::Number::New(env, result_.loss[t]));
    }
    object.Set("loss", loss);
    const auto& conflict = result_.conflict;
    if (conflict.steps > 0) {
      auto numbers = [&](const auto& values) {
        auto array = Napi::Array::New(env, values.size());
        for (size_t i = 0; i < values.size(); ++i)
          array.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(values[i])));
        return array;
      };
      auto measured = Napi::Object::New(env);
      measured.Set("steps", Napi::Number::New(env, static_cast<double>(conflict.steps)));
      measured.Set("normSums", numbers(conflict.norm_sums));
      measured.Set("normCounts", numbers(conflict.norm_counts));
      measured.Set("cosineSums", numbers(conflict.cosine_sums));
      measured.Set("cosineCounts", numbers(conflict.cosine_counts));
      object.Set("conflict", measured);
    }
    return object;
  }

 private:
  std::shared_ptr<TrainerState> trainer_;
  std::shared_ptr<const Dataset> dataset_;
  int64_t epoch_;
  EpochPass pass_;
  double interval_;
  Napi::ThreadSafeFunction progress_;
  EpochResult result_;
};

// Saves (bytes empty) or restores the optimizer state under a write lease on the model.
class TrainerStateWorker : public ModelWorker {
 public:
  TrainerStateWorker(Napi::Env env, std::shared_ptr<TrainerState> trainer, std::string bytes, int64_t step, bool load)
      : ModelWorker(env, trainer->model, Access::Write),
        trainer_(std::move(trainer)),
        bytes_(std::move(bytes)),
        step_(step),
        load_(load) {}

 protected:
  void Run() override {
    if (load_) {
      trainer_->trainer.load_state(bytes_, step_, state().device);
    } else {
      bytes_ = trainer_->trainer.save_state();
    }
  }

  Napi::Value Resolve(Napi::Env env) override {
    if (load_) return env.Undefined();
    auto array = Napi::Uint8Array::New(env, bytes_.size());
    std::memcpy(array.Data(), bytes_.data(), bytes_.size());
    return array;
  }

 private:
  std::shared_ptr<TrainerState> trainer_;
  std::string bytes_;
  int64_t step_;
  bool load_;
};

}  // namespace

Napi::Function AddonTrainer::Define(Napi::Env env) {
  return DefineClass(env, "Trainer",
                     {
                         InstanceMethod<&AddonTrainer::TrainEpoch>("trainEpoch"),
                         InstanceMethod<&AddonTrainer::Abort>("abort"),
                         InstanceMethod<&AddonTrainer::Step>("step"),
                         InstanceMethod<&AddonTrainer::LearningRate>("learningRate"),
                         InstanceMethod<&AddonTrainer::TaskWeights>("taskWeights"),
                         InstanceMethod<&AddonTrainer::SetTaskWeights>("setTaskWeights"),
                         InstanceMethod<&AddonTrainer::SaveState>("saveState"),
                         InstanceMethod<&AddonTrainer::LoadState>("loadState"),
                         InstanceMethod<&AddonTrainer::Dispose>("dispose"),
                     });
}

AddonTrainer::AddonTrainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonTrainer>(info) {
  guarded(info.Env(), [&] {
    auto model = AddonModel::state_of(info[0], "model");
    if (!info[1].IsObject()) throw_invalid("Trainer needs an options object");
    const auto options = info[1].As<Napi::Object>();
    state_ = std::make_shared<TrainerState>(model, to_trainer_options(options));
    state_->communicator = AddonProcessGroup::from_value(options.Get("distributed"), "distributed");
  });
}

std::shared_ptr<TrainerState> AddonTrainer::live() const {
  if (!state_) throw DisposedError("the trainer");
  return state_;
}

Napi::Value AddonTrainer::TrainEpoch(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto dataset = AddonDataset::from_value(info[0], "dataset");
    if (!info[1].IsNumber()) throw_invalid("epoch must be a number");
    const auto epoch = static_cast<int64_t>(info[1].As<Napi::Number>().Int64Value());
    const Napi::Function on_progress = info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
    if (!info[3].IsNumber()) throw_invalid("intervalSeconds must be a number");
    const double interval = info[3].As<Napi::Number>().DoubleValue();
    const Fields options(info[4], "pass");
    EpochPass pass;
    pass.shuffle_key = static_cast<uint64_t>(options.integer("shuffleKey"));
    pass.own_batches = options.integer("ownBatches");
    pass.has_rows = options.boolean("hasRows");
    return (new EpochWorker(info.Env(), live(), dataset, epoch, pass, on_progress, interval))->Start();
  });
}

Napi::Value AddonTrainer::Abort(const Napi::CallbackInfo& info) {
  if (state_) state_->abort = true;
  return info.Env().Undefined();
}

Napi::Value AddonTrainer::Step(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(live()->trainer.global_step()));
  });
}

// Between passes only (lib/training/fit.ts): the weights are read by the running pass's thread.
Napi::Value AddonTrainer::TaskWeights(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const auto weights = live()->trainer.task_weights();
    auto result = Napi::Array::New(info.Env(), weights.size());
    for (size_t t = 0; t < weights.size(); ++t)
      result.Set(static_cast<uint32_t>(t), Napi::Number::New(info.Env(), weights[t]));
    return result;
  });
}

Napi::Value AddonTrainer::SetTaskWeights(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsArray()) throw_invalid("setTaskWeights needs an array of numbers");
    const auto array = info[0].As<Napi::Array>();
    std::vector<double> weights;
    for (uint32_t t = 0; t < array.Length(); ++t) {
      const auto value = array.Get(t);
      if (!value.IsNumber()) throw_invalid("setTaskWeights needs an array of numbers");
      weights.push_back(value.As<Napi::Number>().DoubleValue());
    }
    live()->trainer.set_task_weights(weights);
    return info.Env().Undefined();
  });
}

Napi::Value AddonTrainer::LearningRate(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    const auto trainer = live();
    const int64_t step = info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : trainer->trainer.global_step();
    return Napi::Number::New(info.Env(), trainer->trainer.lr_at(step));
  });
}

Napi::Value AddonTrainer::SaveState(const Napi::CallbackInfo& info) {
  return start_worker(
      info.Env(), [&]() -> Napi::Value { return (new TrainerStateWorker(info.Env(), live(), "", 0, false))->Start(); });
}

Napi::Value AddonTrainer::LoadState(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw_invalid("trainer state must be a Uint8Array");
    }
    if (!info[1].IsNumber()) throw_invalid("step must be a number");
    const auto bytes = info[0].As<Napi::Uint8Array>();
    std::string copy(reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength());
    return (new TrainerStateWorker(info.Env(), live(), std::move(copy), info[1].As<Napi::Number>().Int64Value(), true))
        ->Start();
  });
}

Napi::Value AddonTrainer::Dispose(const Napi::CallbackInfo& info) {
  if (state_) state_->abort = true;  // a running epoch stops at its next batch
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace adatt::binding
