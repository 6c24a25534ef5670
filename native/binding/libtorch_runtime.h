// Which LibTorch the process actually loaded, so a prebuilt or stale addon running against another
// LibTorch than it was built for fails at load with a clear message instead of misbehaving later.
#pragma once

#include <string>

namespace adatt::binding {

struct LoadedLibTorch {
  std::string path;     // the libtorch_cpu shared library in use
  std::string version;  // "major.minor[.patch…]", or empty when it cannot be told
};

LoadedLibTorch loaded_libtorch();

// Empty when the loaded LibTorch matches the one this addon was compiled against (major.minor),
// else a message saying how to rebuild.
std::string libtorch_mismatch(const LoadedLibTorch& loaded);

}  // namespace adatt::binding
