#include "model_state.h"

#include <torch/cuda.h>

#include <map>
#include <optional>
#include <vector>

#include "adatt/calibration.h"
#include "adatt/errors.h"
#include "adatt/trainer.h"
#include "convert.h"
#include "dataset_wrap.h"
#include "distributed_wrap.h"
#include "errors.h"

namespace adatt::binding {
namespace {

enum class DatasetResult { Metrics, Predictions, RawOutputs };

class MoveWorker : public ModelWorker {
 public:
  MoveWorker(Napi::Env env, std::shared_ptr<ModelState> state, torch::Device device)
      : ModelWorker(env, std::move(state), Access::Write), device_(device) {}

 protected:
  void Run() override {
    if (state().script) {
      state().script->module().to(device_);
    } else {
      model().to(device_);
    }
    state().device = device_;
  }

 private:
  torch::Device device_;
};

// Whole-dataset outputs: turned into metrics (evaluate) or predictions (predict), or returned raw
// (predict with rawOutputs, for metrics over many datasets, e.g. the chunks of a stream).
class DatasetWorker : public ModelWorker {
 public:
  DatasetWorker(Napi::Env env, std::shared_ptr<ModelState> state, std::shared_ptr<const Dataset> dataset,
                std::vector<TaskType> types, int64_t batch_size, DatasetResult result,
                std::shared_ptr<Communicator> communicator, std::vector<SampleSpace> spaces,
                std::vector<std::optional<Calibrator>> calibrators)
      : ModelWorker(env, std::move(state), Access::Read),
        dataset_(std::move(dataset)),
        types_(std::move(types)),
        batch_size_(batch_size),
        result_(result),
        communicator_(std::move(communicator)),
        spaces_(std::move(spaces)),
        calibrators_(std::move(calibrators)) {}

 protected:
  void Run() override {
    if (types_.size() != task_model().task_specs().size()) throw InvalidArgument("taskTypes needs one entry per task");
    std::vector<bool> regression;
    for (auto type : types_) regression.push_back(type == TaskType::Regression);
    task_model().check_dataset(*dataset_, regression);
    const auto outputs = predict_outputs(task_model(), *dataset_, batch_size_, state().device, communicator_.get());
    for (size_t t = 0; t < outputs.size(); ++t) {
      switch (result_) {
        case DatasetResult::Metrics:
          results_.push_back(task_metrics(
              types_[t], calibrated_outputs(types_[t], outputs[t], calibrators_[t]),
              in_sample_space(dataset_->labels().select(1, static_cast<int64_t>(t)), dataset_->labels(), spaces_[t]),
              dataset_->sample_weights().defined() ? dataset_->sample_weights().select(1, static_cast<int64_t>(t))
                                                   : torch::Tensor(),
              dataset_->groups()));
          break;
        case DatasetResult::Predictions:
          predictions_.push_back(calibrated_predictions(types_[t], outputs[t], calibrators_[t]).contiguous());
          break;
        case DatasetResult::RawOutputs: predictions_.push_back(outputs[t].contiguous()); break;
      }
    }
  }

  // Collectives must run in the same order on every rank: one at a time, on the compute thread.
  Runs runs() const override { return communicator_ ? Runs::OnComputeThread : ModelWorker::runs(); }

  Napi::Value Resolve(Napi::Env env) override {
    auto result = Napi::Array::New(env);
    for (size_t t = 0; t < results_.size(); ++t) {
      auto metrics = Napi::Object::New(env);
      for (const auto& [name, value] : results_[t]) metrics.Set(name, Napi::Number::New(env, value));
      result.Set(static_cast<uint32_t>(t), metrics);
    }
    for (size_t t = 0; t < predictions_.size(); ++t) {
      result.Set(static_cast<uint32_t>(t), to_float32_array(env, predictions_[t]));
    }
    return result;
  }

 private:
  std::shared_ptr<const Dataset> dataset_;
  std::vector<TaskType> types_;
  int64_t batch_size_;
  DatasetResult result_;
  std::shared_ptr<Communicator> communicator_;
  std::vector<SampleSpace> spaces_;
  std::vector<std::optional<Calibrator>> calibrators_;  // per task (metrics and predictions; not raw outputs)
  std::vector<std::map<std::string, double>> results_;
  std::vector<torch::Tensor> predictions_;
};

}  // namespace

torch::Device to_device(const std::string& name) {
  const torch::Device device(name);  // throws c10::Error naming the bad string
  if (device.is_cuda()) {
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (count == 0)
      throw InvalidArgument("device '" + name + "': CUDA is not available in this LibTorch build or machine");
    if (device.has_index() && device.index() >= count) {
      throw InvalidArgument("device '" + name + "': only " + std::to_string(count) + " CUDA device(s) present");
    }
  } else if (!device.is_cpu()) {
    throw InvalidArgument("device '" + name + "' is not supported; use 'cpu' or 'cuda[:index]'");
  }
  return device;
}

OperationLease::OperationLease(std::shared_ptr<ModelState> state, Access access)
    : state_(std::move(state)), access_(access) {
  if (state_->writer || (access_ == Access::Write && state_->readers > 0)) {
    throw BusyError();
  }
  if (access_ == Access::Write) {
    state_->writer = true;
  } else {
    ++state_->readers;
  }
}

OperationLease::~OperationLease() {
  if (access_ == Access::Write) {
    state_->writer = false;
  } else {
    --state_->readers;
  }
}

Napi::Value start_dataset_worker(const Napi::CallbackInfo& info, std::shared_ptr<ModelState> state, bool metrics) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto dataset = AddonDataset::from_value(info[0], "dataset");
    if (!info[1].IsObject()) throw_invalid("evaluate and predict need { batchSize, taskTypes }");
    const auto options = info[1].As<Napi::Object>();
    auto types = to_task_types(options.Get("taskTypes"));
    auto spaces = to_sample_spaces(options.Get("where"), types.size());
    auto calibrators = to_calibrators(options.Get("calibrators"), types.size());
    return (new DatasetWorker(info.Env(), state, dataset, std::move(types), Fields(options).integer("batchSize"),
                              metrics                                         ? DatasetResult::Metrics
                              : options.Get("rawOutputs").ToBoolean().Value() ? DatasetResult::RawOutputs
                                                                              : DatasetResult::Predictions,
                              AddonProcessGroup::from_value(options.Get("distributed"), "distributed"),
                              std::move(spaces), std::move(calibrators)))
        ->Start();
  });
}

Napi::Value start_move_worker(const Napi::CallbackInfo& info, std::shared_ptr<ModelState> state) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw_invalid("device must be a string such as 'cpu' or 'cuda:0'");
    const auto device = to_device(info[0].As<Napi::String>().Utf8Value());
    return (new MoveWorker(info.Env(), state, device))->Start();
  });
}

}  // namespace adatt::binding
