#include "worker.h"

#include <thread>

#include "addon_data.h"
#include "compute_thread.h"
#include "threads.h"

namespace adatt::binding {

bool can_call_into_js(napi_env env) {
  // napi_strict_equals takes N-API's preamble, which refuses an environment that cannot run JS.
  napi_value global = nullptr;
  bool same = false;
  return env != nullptr && napi_get_global(env, &global) == napi_ok &&
         napi_strict_equals(env, global, global, &same) == napi_ok;
}

std::shared_ptr<Completions> Completions::create(Napi::Env env) {
  auto completions = std::make_shared<Completions>();
  completions->settler_ =
      Napi::TypedThreadSafeFunction<void, PromiseWorker, &Completions::settle>::New(env, "adatt.settle", 0, 1);
  completions->settler_.Unref(env);
  // Registered after the thread-safe function, so it runs before N-API closes it (hooks run in
  // reverse order); it holds its own reference, whatever order the instance data goes in.
  napi_add_env_cleanup_hook(env, &Completions::close, new std::shared_ptr<Completions>(completions));
  return completions;
}

void Completions::close(void* held) {
  std::unique_ptr<std::shared_ptr<Completions>> completions(static_cast<std::shared_ptr<Completions>*>(held));
  std::lock_guard<std::mutex> lock((*completions)->mutex_);
  (*completions)->closed_ = true;
}

void Completions::started(Napi::Env env) {
  if (pending_++ == 0) settler_.Ref(env);
}

bool Completions::while_open(const std::function<void()>& call) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return false;
  call();
  return true;
}

void Completions::finish(PromiseWorker* job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!closed_ && settler_.NonBlockingCall(job) == napi_ok) return;
  }
  delete job;  // the environment is going away: nobody is left to settle for
}

void Completions::settle(Napi::Env env, Napi::Function, void*, PromiseWorker* job) {
  std::unique_ptr<PromiseWorker> owned(job);
  if (!can_call_into_js(env)) return;  // torn down, or the queue drained at teardown
  auto& completions = *job->completions_;
  job->settle(env);
  if (--completions.pending_ == 0) completions.settler_.Unref(env);
}

PromiseWorker::PromiseWorker(Napi::Env env)
    : deferred_(Napi::Promise::Deferred::New(env)), completions_(addon_data(env).completions) {}

Napi::Promise PromiseWorker::Start() {
  auto promise = deferred_.Promise();
  completions_->started(promise.Env());
  switch (runs()) {
    case Runs::OnComputeThread: post_to_compute_thread([this] { execute(); }); break;
    case Runs::OnInferenceThreads: post_to_inference_threads([this] { execute(); }); break;
    case Runs::OnOwnThread: std::thread([this] { execute(); }).detach(); break;
  }
  return promise;
}

Napi::Promise PromiseWorker::RunInline() {
  auto promise = deferred_.Promise();
  try {
    apply_thread_count();
    Run();
  } catch (...) {
    failed_ = true;
    error_ = describe_current_exception();
  }
  settle(promise.Env());
  delete this;
  return promise;
}

void PromiseWorker::execute() {
  try {
    Run();
  } catch (...) {
    failed_ = true;
    error_ = describe_current_exception();
  }
  completions_->finish(this);
}

void PromiseWorker::settle(Napi::Env env) {
  // Nothing may escape into N-API's callback: an exception there ends the process.
  try {
    Napi::HandleScope scope(env);
    if (failed_) {
      deferred_.Reject(make_error(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(Resolve(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(make_error(env, describe_current_exception()).Value());
    }
  } catch (...) {
    // The environment refused even the rejection (it is shutting down): drop the result.
  }
}

Napi::Value start_worker(Napi::Env env, const std::function<Napi::Value()>& make) {
  auto rejected = [&env](const Napi::Value& error) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(error);
    return deferred.Promise();
  };
  try {
    return make();
  } catch (const Napi::Error& e) {
    return rejected(e.Value());
  } catch (...) {
    return rejected(make_error(env, describe_current_exception()).Value());
  }
}

}  // namespace adatt::binding
