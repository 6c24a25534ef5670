#include "errors.h"

#include <torch/csrc/jit/frontend/error_report.h>
#include <torch/torch.h>

#include "adatt/errors.h"
#include "adatt/trainer.h"

namespace adatt::binding {

ErrorInfo describe_current_exception() {
  try {
    throw;
  } catch (const BusyError& e) {
    return {"ADATT_BUSY", e.what()};
  } catch (const DisposedError& e) {
    return {"ADATT_DISPOSED", e.what()};
  } catch (const adatt::InvalidArgument& e) {
    return {"ADATT_INVALID_ARGUMENT", e.what()};
  } catch (const adatt::NonFiniteLoss& e) {
    return {"ADATT_NON_FINITE", e.what()};
  } catch (const adatt::FileError& e) {
    return {"ADATT_IO", e.what()};
  } catch (const torch::jit::ErrorReport&) {
    // what() of this type is noexcept but may throw while rendering source context: never call it.
    return {"ADATT_TORCH", "TorchScript reported a compilation error"};
  } catch (const c10::Error& e) {
    // what() carries a C++ backtrace; JS users get LibTorch's message alone.
    return {"ADATT_TORCH", e.what_without_backtrace()};
  } catch (const std::exception& e) {
    return {"ADATT_INTERNAL", e.what()};
  } catch (...) {
    return {"ADATT_INTERNAL", "unknown native exception"};
  }
}

Napi::Error make_error(Napi::Env env, const ErrorInfo& info) {
  auto error = Napi::Error::New(env, info.message);
  error.Set("code", Napi::String::New(env, info.code));
  return error;
}

void throw_invalid(const std::string& message) { throw adatt::InvalidArgument(message); }

}  // namespace adatt::binding
