# node-gyp / prebuildify build of the same addon CMakeLists.txt builds: the same source globs, and
# the standard, warnings and defines of native/build-flags.json. LibTorch comes from
# scripts/install/find-libtorch.js (LIBTORCH, LIBTORCH_USE_PYTORCH=1, or the system's), as for CMake.
{
  "targets": [
    {
      "target_name": "adatt",
      "sources": ["<!@(ls -1 native/src/*.cpp native/binding/*.cpp)"],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include_dir\")",
        "native/include",
        "<!@(node scripts/install/find-libtorch.js --include)"
      ],
      "defines": ["<!@(node -p \"require('./native/build-flags.json').defines.join(' ')\")"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++14", "-std=gnu++17"],
      "cflags_cc": [
        "-std=c++<!(node -p \"require('./native/build-flags.json').cxxStandard\")",
        "<!@(node -p \"require('./native/build-flags.json').warnings.join(' ')\")",
        "-fexceptions", "-frtti", "-O2", "<!@(node scripts/install/find-libtorch.js --cflags)"
      ],
      "libraries": ["<!@(node scripts/install/find-libtorch.js --libs)"]
    }
  ]
}
