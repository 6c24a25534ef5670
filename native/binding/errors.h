// Maps C++ exceptions to JS errors carrying a `code` (see docs/architecture.md). No C++ exception
// may cross into N-API: every entry point runs its body through `guarded` or a PromiseWorker.
#pragma once

#include <napi.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace adatt::binding {

// Another operation holds the object (see OperationLease).
class BusyError : public std::runtime_error {
 public:
  BusyError() : std::runtime_error("the model is busy with another operation; await it before starting this one") {}
};

// The object was disposed.
class DisposedError : public std::runtime_error {
 public:
  explicit DisposedError(const std::string& what) : std::runtime_error(what + " has been disposed") {}
};

struct ErrorInfo {
  std::string code;
  std::string message;
};

// Classifies the exception in flight (call from a catch block).
ErrorInfo describe_current_exception();

Napi::Error make_error(Napi::Env env, const ErrorInfo& info);

// Throws ADATT_INVALID_ARGUMENT from binding code that checks JS values.
[[noreturn]] void throw_invalid(const std::string& message);

template <typename Fn>
auto guarded(Napi::Env env, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_error(env, describe_current_exception());
  }
}

}  // namespace adatt::binding
