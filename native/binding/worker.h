// Promise-returning AsyncWorker: Run() executes off the event loop (on the compute thread unless the
// job only waits on other processes), Resolve() builds the JS result.
#pragma once

#include <napi.h>

#include "compute_thread.h"
#include "errors.h"

namespace adatt::binding {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}

  // Queues the worker and returns its promise.
  Napi::Promise Start() {
    Queue();
    return deferred_.Promise();
  }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Resolve(Napi::Env env) { return env.Undefined(); }
  // Jobs that compute run one at a time on the compute thread; jobs that only wait for other
  // processes (rendezvous, barriers) run on libuv's thread so that they hold no one up.
  virtual bool computes() const { return true; }

 private:
  void Execute() final {
    try {
      if (computes()) {
        run_on_compute_thread([this] { Run(); });
      } else {
        Run();
      }
    } catch (...) {
      error_ = describe_current_exception();
      SetError(error_.message);
    }
  }
  void OnOK() final {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Resolve(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (...) {
      deferred_.Reject(make_error(env, describe_current_exception()).Value());
    }
  }
  void OnError(const Napi::Error& /*unused*/) final { deferred_.Reject(make_error(Env(), error_).Value()); }

  Napi::Promise::Deferred deferred_;
  ErrorInfo error_;
};

}  // namespace adatt::binding
