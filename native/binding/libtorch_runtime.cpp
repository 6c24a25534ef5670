#include "libtorch_runtime.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <torch/version.h>

#include <fstream>
#include <regex>
#include <sstream>

namespace adatt::binding {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string parent_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

}  // namespace

LoadedLibTorch loaded_libtorch() {
  LoadedLibTorch loaded;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&at::get_num_threads), &info) == 0 || info.dli_fname == nullptr) return loaded;
  char resolved[PATH_MAX];
  loaded.path = realpath(info.dli_fname, resolved) != nullptr ? resolved : info.dli_fname;
  std::smatch match;
  // Debian and other distributions: libtorch_cpu.so.1.13.0
  static const std::regex kSoname(R"(\.so\.(\d+\.\d+(?:\.\d+)?)$)");
  if (std::regex_search(loaded.path, match, kSoname)) {
    loaded.version = match[1].str();
    return loaded;
  }
  const std::string root = parent_of(parent_of(loaded.path));
  // A LibTorch distribution has build-version ("2.5.1+cpu"); a pip torch has version.py.
  static const std::regex kVersion(R"((\d+\.\d+(?:\.\d+)?))");
  for (const auto& file : {root + "/build-version", root + "/version.py"}) {
    const std::string text = read_file(file);
    if (std::regex_search(text, match, kVersion)) {
      loaded.version = match[1].str();
      return loaded;
    }
  }
  return loaded;
}

std::string libtorch_mismatch(const LoadedLibTorch& loaded) {
  if (loaded.version.empty()) return "";
  static const std::regex kMajorMinor(R"(^(\d+)\.(\d+))");
  std::smatch match;
  if (!std::regex_search(loaded.version, match, kMajorMinor)) return "";
  if (std::stoi(match[1].str()) == TORCH_VERSION_MAJOR && std::stoi(match[2].str()) == TORCH_VERSION_MINOR) return "";
  return "adatt's native addon was built against LibTorch " + std::string(TORCH_VERSION) + " but LibTorch " +
         loaded.version + " is loaded (" + loaded.path + "). Rebuild it for this LibTorch: `npm rebuild adatt` " +
         "(or `npm run build:native` in a checkout), with LIBTORCH=/path/to/libtorch or LIBTORCH_USE_PYTORCH=1 to "
         "choose the LibTorch.";
}

}  // namespace adatt::binding
