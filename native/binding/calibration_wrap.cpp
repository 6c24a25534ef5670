#include "calibration_wrap.h"

#include <functional>
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

// One binary task's logits and labels, with its sample weights when the data has them.
struct TaskRows {
  torch::Tensor logits, labels, weights;
};

std::vector<TaskRows> to_task_rows(const Napi::CallbackInfo& info, const char* what) {
  auto outputs = to_float_arrays(info[0], "outputs");
  auto labels = to_float_arrays(info[1], "labels");
  auto weights = info[2].IsUndefined() ? std::vector<torch::Tensor>() : to_float_arrays(info[2], "sampleWeights");
  if (labels.size() != outputs.size() || (!weights.empty() && weights.size() != outputs.size())) {
    throw_invalid(std::string(what) + " needs one outputs, labels (and sampleWeights) array per task");
  }
  std::vector<TaskRows> tasks;
  for (size_t t = 0; t < outputs.size(); ++t) {
    const auto rows = labels[t].numel();
    if (outputs[t].numel() != rows || (!weights.empty() && weights[t].numel() != rows)) {
      throw_invalid(std::string(what) + ": task " + std::to_string(t) + " needs one output and one weight per label");
    }
    tasks.push_back({outputs[t], labels[t], weights.empty() ? torch::Tensor() : weights[t]});
  }
  return tasks;
}

// One result per task, computed on an inference thread, resolved to their JS forms in task order.
template <typename Result>
class PerTaskWorker : public PromiseWorker {
 public:
  using Compute = std::function<Result(size_t)>;
  using Convert = Napi::Object (*)(Napi::Env, const Result&);
  PerTaskWorker(Napi::Env env, size_t tasks, Compute compute, Convert convert)
      : PromiseWorker(env), tasks_(tasks), compute_(std::move(compute)), convert_(convert) {}

 protected:
  Runs runs() const override { return Runs::OnInferenceThreads; }

  void Run() override {
    for (size_t t = 0; t < tasks_; ++t) results_.push_back(compute_(t));
  }

  Napi::Value Resolve(Napi::Env env) override {
    auto result = Napi::Array::New(env, results_.size());
    for (size_t t = 0; t < results_.size(); ++t) result.Set(static_cast<uint32_t>(t), convert_(env, results_[t]));
    return result;
  }

 private:
  size_t tasks_;
  Compute compute_;
  Convert convert_;
  std::vector<Result> results_;
};

}  // namespace

Napi::Value FitCalibrators(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto tasks = to_task_rows(info, "fitCalibrators");
    if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() != tasks.size()) {
      throw_invalid("fitCalibrators needs one method per task");
    }
    std::vector<CalibrationMethod> methods;
    for (uint32_t t = 0; t < tasks.size(); ++t) {
      methods.push_back(to_calibration_method(info[3].As<Napi::Array>().Get(t), "methods[" + std::to_string(t) + "]"));
    }
    const size_t count = tasks.size();
    auto fit = [tasks = std::move(tasks), methods = std::move(methods)](size_t t) {
      return fit_calibrator(methods[t], tasks[t].logits, tasks[t].labels, tasks[t].weights);
    };
    return (new PerTaskWorker<Calibrator>(info.Env(), count, std::move(fit), to_raw_calibrator))->Start();
  });
}

Napi::Value ReliabilityCurves(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto tasks = to_task_rows(info, "reliabilityCurves");
    auto calibrators = to_calibrators(info[3], tasks.size());
    const size_t count = tasks.size();
    auto curve = [tasks = std::move(tasks), calibrators = std::move(calibrators)](size_t t) {
      const auto& calibrator = calibrators[t];
      const auto p =
          calibrator ? calibrator->probabilities(tasks[t].logits) : torch::sigmoid(tasks[t].logits.to(torch::kDouble));
      return reliability_curve(p, tasks[t].labels, tasks[t].weights);
    };
    return (new PerTaskWorker<ReliabilityCurve>(info.Env(), count, std::move(curve), to_raw_reliability_curve))
        ->Start();
  });
}

}  // namespace adatt::binding
