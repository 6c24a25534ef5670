#include "metrics_wrap.h"

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "adatt/calibration.h"
#include "adatt/errors.h"
#include "adatt/metrics.h"
#include "convert.h"
#include "worker.h"

namespace adatt::binding {
namespace {

class MetricsWorker : public PromiseWorker {
 public:
  MetricsWorker(Napi::Env env, std::vector<torch::Tensor> outputs, std::vector<torch::Tensor> labels,
                std::vector<TaskType> types, std::vector<SampleSpace> spaces, std::vector<torch::Tensor> weights,
                torch::Tensor groups, std::vector<std::optional<Calibrator>> calibrators)
      : PromiseWorker(env),
        outputs_(std::move(outputs)),
        labels_(std::move(labels)),
        types_(std::move(types)),
        spaces_(std::move(spaces)),
        weights_(std::move(weights)),
        groups_(std::move(groups)),
        calibrators_(std::move(calibrators)) {}

 protected:
  void Run() override {
    for (const auto& labels : labels_) {
      if (labels.numel() != labels_.front().numel())
        throw InvalidArgument("taskMetrics: every task needs one label per row");
    }
    if (groups_.defined() && groups_.numel() != labels_.front().numel()) {
      throw InvalidArgument("taskMetrics: groups needs one group id per row");
    }
    for (const auto& weights : weights_) {
      if (weights.numel() != labels_.front().numel())
        throw InvalidArgument("taskMetrics: every task needs one sample weight per row");
    }
    // Every task's labels side by side, only when a sample space reads another task's.
    const bool spaced = std::any_of(spaces_.begin(), spaces_.end(), [](const SampleSpace& s) { return s.task >= 0; });
    const auto all_labels = spaced ? torch::stack(labels_, 1) : torch::Tensor();
    for (size_t t = 0; t < types_.size(); ++t) {
      const int64_t rows = labels_[t].numel();
      // Tower outputs are [rows * K] row-major: K = 1 for binary and regression tasks.
      if (rows == 0 || outputs_[t].numel() % rows != 0) {
        throw InvalidArgument("taskMetrics: outputs[" + std::to_string(t) + "] has " +
                              std::to_string(outputs_[t].numel()) + " values for " + std::to_string(rows) + " labels");
      }
      results_.push_back(task_metrics(types_[t],
                                      calibrated_outputs(types_[t], outputs_[t].view({rows, -1}), calibrators_[t]),
                                      in_sample_space(labels_[t], all_labels, spaces_[t]),
                                      weights_.empty() ? torch::Tensor() : weights_[t], groups_));
    }
  }

  Runs runs() const override { return Runs::OnInferenceThreads; }

  Napi::Value Resolve(Napi::Env env) override {
    auto result = Napi::Array::New(env, results_.size());
    for (size_t t = 0; t < results_.size(); ++t) {
      auto metrics = Napi::Object::New(env);
      for (const auto& [name, value] : results_[t]) metrics.Set(name, Napi::Number::New(env, value));
      result.Set(static_cast<uint32_t>(t), metrics);
    }
    return result;
  }

 private:
  std::vector<torch::Tensor> outputs_;
  std::vector<torch::Tensor> labels_;
  std::vector<TaskType> types_;
  std::vector<SampleSpace> spaces_;
  std::vector<torch::Tensor> weights_;  // per task, or empty: every row weighs 1
  torch::Tensor groups_;                // [rows] int64, or undefined
  std::vector<std::optional<Calibrator>> calibrators_;
  std::vector<std::map<std::string, double>> results_;
};

}  // namespace

Napi::Value TaskMetrics(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto outputs = to_float_arrays(info[0], "outputs");
    auto labels = to_float_arrays(info[1], "labels");
    auto types = to_task_types(info[2]);
    if (outputs.size() != types.size() || labels.size() != types.size()) {
      throw_invalid("taskMetrics needs one outputs and one labels array per task");
    }
    auto spaces = to_sample_spaces(info[3], types.size());
    auto weights = info[4].IsUndefined() ? std::vector<torch::Tensor>() : to_float_arrays(info[4], "sampleWeights");
    if (!weights.empty() && weights.size() != types.size())
      throw_invalid("taskMetrics needs one sampleWeights array per task");
    auto groups = info[5].IsUndefined() ? torch::Tensor() : to_group_ids(info[5]);
    auto calibrators = to_calibrators(info[6], types.size());
    return (new MetricsWorker(info.Env(), std::move(outputs), std::move(labels), std::move(types), std::move(spaces),
                              std::move(weights), std::move(groups), std::move(calibrators)))
        ->Start();
  });
}

}  // namespace adatt::binding
