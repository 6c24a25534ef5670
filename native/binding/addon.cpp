// Module entry: info(), setNumThreads(), process-wide runtime settings, and the classes of the raw addon
// (lib/addon.ts).
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <napi.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "addon_data.h"
#include "calibration_wrap.h"
#include "compute_thread.h"
#include "dataset_wrap.h"
#include "distributed_wrap.h"
#include "errors.h"
#include "libtorch_runtime.h"
#include "metrics_wrap.h"
#include "model_wrap.h"
#include "script_wrap.h"
#include "text_dictionary_wrap.h"
#include "threads.h"
#include "trainer_wrap.h"

namespace adatt::binding {
namespace {

Napi::Value Info(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto result = Napi::Object::New(env);
    const auto loaded = loaded_libtorch();
    result.Set("libtorchVersion", Napi::String::New(env, TORCH_VERSION));
    result.Set("runtimeLibtorchVersion", Napi::String::New(env, loaded.version));
    result.Set("libtorchPath", Napi::String::New(env, loaded.path));
    result.Set("torchVersionMajor", Napi::Number::New(env, TORCH_VERSION_MAJOR));
    result.Set("torchVersionMinor", Napi::Number::New(env, TORCH_VERSION_MINOR));
    result.Set("cudaBuilt", Napi::Boolean::New(env, at::hasCUDA()));
    result.Set("cudaAvailable", Napi::Boolean::New(env, torch::cuda::is_available()));
    result.Set("ncclBuilt", Napi::Boolean::New(env, nccl_built()));
    result.Set("cudaDeviceCount", Napi::Number::New(env, static_cast<double>(torch::cuda::device_count())));
    const auto plan = current_thread_plan();
    result.Set("numThreads", Napi::Number::New(env, plan.intra_op));
    result.Set("blasThreads", Napi::Number::New(env, plan.blas));
    result.Set("blasThreading", Napi::String::New(env, blas_threading_name(blas_threading())));
    result.Set("blasMaxThreads", Napi::Number::New(env, blas_max_threads()));
    result.Set("numInteropThreads", Napi::Number::New(env, at::get_num_interop_threads()));
    result.Set("inferenceThreads", Napi::Number::New(env, inference_threads()));
    result.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
    return result;
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsNumber()) throw_invalid("setNumThreads needs a positive integer");
    const int threads = info[0].As<Napi::Number>().Int32Value();
    if (threads < 1) throw_invalid("setNumThreads needs a positive integer");
    const int intra_op = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    if (intra_op < 0) throw_invalid("setNumThreads: intraOpThreads must be a positive integer");
    set_thread_count(threads, intra_op);
    if (info[2].IsNumber()) {
      const int inference = info[2].As<Napi::Number>().Int32Value();
      if (inference < 1) throw_invalid("setNumThreads: inferenceThreads must be a positive integer");
      set_inference_threads(inference);
    }
    return info.Env().Undefined();
  });
}

}  // namespace
}  // namespace adatt::binding

// NODE_API_MODULE needs an unqualified function name.
static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  using namespace adatt::binding;
  const std::string mismatch = libtorch_mismatch(loaded_libtorch());
  if (!mismatch.empty()) {
    auto error = Napi::Error::New(env, mismatch);
    error.Set("code", Napi::String::New(env, "ADATT_NATIVE_LOAD"));
    throw error;
  }
  adatt::keep_freed_memory_for_reuse();
  init_thread_plan();
  exports.Set("info", Napi::Function::New<Info>(env, "info"));
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreads>(env, "setNumThreads"));
  auto* data = new AddonData();
  env.SetInstanceData(data);  // deleted by N-API when this environment goes away
  data->completions = Completions::create(env);
  const auto model_class = AddonModel::Define(env);
  const auto dataset_class = AddonDataset::Define(env);
  data->dataset_class = Napi::Persistent(dataset_class);
  const auto script_class = AddonScriptModule::Define(env);
  data->script_class = Napi::Persistent(script_class);
  exports.Set("ScriptModule", script_class);
  exports.Set("loadScript", Napi::Function::New<LoadScript>(env, "loadScript"));
  const auto process_group_class = AddonProcessGroup::Define(env);
  data->process_group_class = Napi::Persistent(process_group_class);
  exports.Set("ProcessGroup", process_group_class);
  exports.Set("initProcessGroup", Napi::Function::New<InitProcessGroup>(env, "initProcessGroup"));
  exports.Set("Model", model_class);
  exports.Set("Dataset", dataset_class);
  exports.Set("Trainer", AddonTrainer::Define(env));
  exports.Set("taskMetrics", Napi::Function::New<TaskMetrics>(env, "taskMetrics"));
  exports.Set("fitCalibrators", Napi::Function::New<FitCalibrators>(env, "fitCalibrators"));
  exports.Set("reliabilityCurves", Napi::Function::New<ReliabilityCurves>(env, "reliabilityCurves"));
  exports.Set("TextDictionary", AddonTextDictionary::Define(env));
  return exports;
}

NODE_API_MODULE(adatt, InitAddon)
