# node-gyp / prebuildify build of the same addon CMakeLists.txt builds. LibTorch comes from
# scripts/find-libtorch.js (LIBTORCH, LIBTORCH_USE_PYTORCH=1, or the system's), as for CMake.
{
  "targets": [
    {
      "target_name": "adatt",
      "sources": ["<!@(ls -1 native/src/*.cpp native/binding/*.cpp)"],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include_dir\")",
        "native/include",
        "<!@(node scripts/find-libtorch.js --include)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "<!@(node scripts/find-libtorch.js --cflags)"],
      "libraries": ["<!@(node scripts/find-libtorch.js --libs)"]
    }
  ]
}
