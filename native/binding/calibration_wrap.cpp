#include "calibration_wrap.h"

#include <optional>
#include <string>
#include <vector>

#include "adatt/calibration.h"
#include "adatt/errors.h"
#include "adatt/metrics.h"
#include "convert.h"
#include "model_wrap.h"
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

class FitWorker : public PromiseWorker {
 public:
  FitWorker(Napi::Env env, std::vector<TaskRows> tasks, std::vector<CalibrationMethod> methods)
      : PromiseWorker(env), tasks_(std::move(tasks)), methods_(std::move(methods)) {}

 protected:
  void Run() override {
    for (size_t t = 0; t < tasks_.size(); ++t) {
      calibrators_.push_back(fit_calibrator(methods_[t], tasks_[t].logits, tasks_[t].labels, tasks_[t].weights));
    }
  }

  Napi::Value Resolve(Napi::Env env) override {
    auto result = Napi::Array::New(env, calibrators_.size());
    for (size_t t = 0; t < calibrators_.size(); ++t) result.Set(static_cast<uint32_t>(t), to_raw_calibrator(env, calibrators_[t]));
    return result;
  }

 private:
  std::vector<TaskRows> tasks_;
  std::vector<CalibrationMethod> methods_;
  std::vector<Calibrator> calibrators_;
};

class CurveWorker : public PromiseWorker {
 public:
  CurveWorker(Napi::Env env, std::vector<TaskRows> tasks, std::vector<std::optional<Calibrator>> calibrators)
      : PromiseWorker(env), tasks_(std::move(tasks)), calibrators_(std::move(calibrators)) {}

 protected:
  void Run() override {
    for (size_t t = 0; t < tasks_.size(); ++t) {
      const auto& calibrator = calibrators_[t];
      const auto p = calibrator ? calibrator->probabilities(tasks_[t].logits) : torch::sigmoid(tasks_[t].logits.to(torch::kDouble));
      curves_.push_back(reliability_curve(p, tasks_[t].labels, tasks_[t].weights));
    }
  }

  Napi::Value Resolve(Napi::Env env) override {
    auto result = Napi::Array::New(env, curves_.size());
    for (size_t t = 0; t < curves_.size(); ++t) result.Set(static_cast<uint32_t>(t), to_raw_reliability_curve(env, curves_[t]));
    return result;
  }

 private:
  std::vector<TaskRows> tasks_;
  std::vector<std::optional<Calibrator>> calibrators_;
  std::vector<ReliabilityCurve> curves_;
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
    return (new FitWorker(info.Env(), std::move(tasks), std::move(methods)))->Start();
  });
}

Napi::Value ReliabilityCurves(const Napi::CallbackInfo& info) {
  return start_worker(info.Env(), [&]() -> Napi::Value {
    auto tasks = to_task_rows(info, "reliabilityCurves");
    auto calibrators = to_calibrators(info[3], tasks.size());
    return (new CurveWorker(info.Env(), std::move(tasks), std::move(calibrators)))->Start();
  });
}

}  // namespace adatt::binding
