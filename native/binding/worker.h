// Promise-returning native jobs. Start() (JS thread) queues Run() on the compute thread (or, for
// jobs that only wait on other processes, on a thread of its own) and returns the promise; when
// Run() ends, the job is settled back on its environment's JS thread through one thread-safe
// function per environment (`Completions`). No libuv thread is held while a job waits or runs.
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <mutex>

#include "errors.h"

namespace adatt::binding {

class PromiseWorker;

// False once the environment is being torn down (a worker_thread terminated): then every N-API call
// that runs JavaScript fails, and node-addon-api's error path for such a failure aborts the
// process, so callbacks check this first and touch nothing.
bool can_call_into_js(napi_env env);

// Settles the jobs of one environment. An environment cleanup hook closes it before N-API tears
// the environment down (a worker_thread terminated mid-job): jobs that end later are dropped
// quietly on their own thread instead of touching a dead environment.
class Completions {
 public:
  // Creates the environment's instance; call once, at addon load.
  static std::shared_ptr<Completions> create(Napi::Env env);

  // JS thread: a job started (pending jobs keep the event loop alive, an idle addon does not).
  void started(Napi::Env env);
  // Any thread: settles `job` on the JS thread, or deletes it here if the environment is closing.
  void finish(PromiseWorker* job);
  // Any thread: runs `call` (e.g. a progress report through another thread-safe function) only while
  // the environment is open, under the lock that its closing takes.
  bool while_open(const std::function<void()>& call);

 private:
  static void settle(Napi::Env env, Napi::Function, void*, PromiseWorker* job);
  static void close(void* held);

  std::mutex mutex_;
  bool closed_ = false;
  int pending_ = 0;  // JS thread only
  Napi::TypedThreadSafeFunction<void, PromiseWorker, &Completions::settle> settler_;
};

class PromiseWorker {
 public:
  explicit PromiseWorker(Napi::Env env);
  virtual ~PromiseWorker() = default;
  PromiseWorker(const PromiseWorker&) = delete;
  PromiseWorker& operator=(const PromiseWorker&) = delete;

  // Queues the job and returns its promise; the job deletes itself once settled.
  Napi::Promise Start();
  // Runs the job now on the JS thread and returns its settled promise, for jobs that cost less than
  // the two thread handoffs of Start() (a small forward); the job deletes itself.
  Napi::Promise RunInline();

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Resolve(Napi::Env env) { return env.Undefined(); }
  // Where the job runs: the compute thread (one job at a time, in order: training, writes,
  // collectives), the inference threads (jobs that may overlap: model reads, metrics), or a thread
  // of its own (jobs that only wait for other processes: rendezvous, barriers).
  enum class Runs { OnComputeThread, OnInferenceThreads, OnOwnThread };
  virtual Runs runs() const { return Runs::OnComputeThread; }
  Completions& completions() { return *completions_; }

 private:
  friend class Completions;
  void execute();              // off the JS thread
  void settle(Napi::Env env);  // JS thread; never throws

  Napi::Promise::Deferred deferred_;
  std::shared_ptr<Completions> completions_;
  bool failed_ = false;
  ErrorInfo error_;
};

// Runs `make` (which builds and starts a worker); a failure before the worker starts (bad argument,
// busy, disposed) becomes a rejected promise, so async methods never throw synchronously.
Napi::Value start_worker(Napi::Env env, const std::function<Napi::Value()>& make);

}  // namespace adatt::binding
