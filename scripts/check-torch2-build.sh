#!/usr/bin/env bash
# Checks that the native sources build against LibTorch 2.x, CPU and CUDA (with c10d's NCCL
# backend), on a machine that has neither: downloads Debian trixie's LibTorch 2.6 packages (and,
# for CUDA, NCCL's and the CUDA toolkit's headers) into a cache folder without installing them,
# lays each out as a LibTorch distribution, finds it with scripts/install/find-libtorch.js (LIBTORCH=…),
# compiles every source with the flags of native/build-flags.json (what binding.gyp and CMake use), links the addon against its libraries, and
# fails if the addon needs a symbol that none of them defines. Nothing is run: the libraries need
# trixie's glibc. Takes about 1.5 GB of downloads (once) and ~5 minutes per variant on 2 cores.
#   bash scripts/check-torch2-build.sh [cpu] [cuda]      (default: both)
# Cache: ADATT_TORCH2_CACHE (default /tmp/adatt-torch2). Needs root or write access for apt's cache.
# Packages come from this machine's own Debian mirror (scripts/debian-mirror.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${ADATT_TORCH2_CACHE:-/tmp/adatt-torch2}
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(cpu cuda)
JOBS=${ADATT_BUILD_JOBS:-$(nproc)}

mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(bash scripts/debian-mirror.sh) trixie main contrib non-free" \
  >"$CACHE/apt/sources.list"
APT_OPTIONS=(-o "Dir::Etc::sourcelist=$CACHE/apt/sources.list" -o Dir::Etc::sourceparts=/dev/null
  -o "Dir::State::Lists=$CACHE/apt/lists" -o "Dir::Cache=$CACHE/apt" -o Dir::State::status=/dev/null
  -o APT::Sandbox::User=root)

# Unpacks the named packages into $CACHE/<variant>/root (downloaded once). $1: variant; rest: packages.
unpack() {
  local variant=$1
  shift
  local dest="$CACHE/$variant/root"
  [ -f "$dest/.complete" ] && return
  [ -f "$CACHE/apt/lists/.updated" ] || { apt-get "${APT_OPTIONS[@]}" -qq update && touch "$CACHE/apt/lists/.updated"; }
  mkdir -p "$dest"
  (cd "$CACHE/apt/archives" && apt-get "${APT_OPTIONS[@]}" -qq download "$@")
  for package in "$@"; do
    local deb
    deb=$(ls "$CACHE/apt/archives/${package}_"*.deb)
    # The CUDA toolkit package is 2.5 GB unpacked: its headers are all that is needed.
    if [ "$package" = nvidia-cuda-dev ]; then
      dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dest" --wildcards '*/include/*'
    else
      dpkg-deb -x "$deb" "$dest"
    fi
    rm -f "$deb"
  done
  # A LibTorch distribution's layout (include/, lib/, share/cmake/), as LIBTORCH expects.
  mkdir -p "$CACHE/$variant/libtorch/share"
  ln -sfn "$dest/usr/include" "$CACHE/$variant/libtorch/include"
  ln -sfn "$dest/usr/lib/x86_64-linux-gnu" "$CACHE/$variant/libtorch/lib"
  ln -sfn "$dest/usr/lib/x86_64-linux-gnu/cmake" "$CACHE/$variant/libtorch/share/cmake"
  touch "$dest/.complete"
}

check() {
  local variant=$1
  local libtorch="$CACHE/$variant/libtorch"
  local out="$CACHE/$variant/build"
  rm -rf "$out" && mkdir -p "$out"
  export LIBTORCH=$libtorch CUDA_HOME="$CACHE/$variant/root/usr"
  local version
  version=$(node -p "require('./scripts/install/find-libtorch').findLibTorch().version")
  local includes=(-I"$(node -p "require('node-addon-api').include_dir")" -Inode_modules/node-api-headers/include -Inative/include)
  for dir in $(node scripts/install/find-libtorch.js --include); do includes+=(-I"$dir"); done
  # shellcheck disable=SC2207
  # The standard, warnings and defines both builds read (native/build-flags.json).
  local flags=($(node -p "const f = require('./native/build-flags.json'); ['-std=c++' + f.cxxStandard, ...f.warnings, ...f.defines.map((d) => '-D' + d)].join(' ')")
    -fPIC -O0 $(node scripts/install/find-libtorch.js --cflags))
  echo "check-torch2-build: $variant, LibTorch $version; flags: ${flags[*]}"
  local failed=0
  for source in native/src/*.cpp native/binding/*.cpp; do echo "$source"; done |
    xargs -P "$JOBS" -I{} sh -c 'g++ "$@" -c {} -o "'"$out"'/$(basename {} .cpp).o" 2>"'"$out"'/$(basename {} .cpp).log" ||
      { echo "FAILED {}"; cat "'"$out"'/$(basename {} .cpp).log"; exit 1; }' _ "${flags[@]}" "${includes[@]}" || failed=1
  [ $failed -eq 0 ] || { echo "check-torch2-build: $variant: compile errors above"; return 1; }
  # shellcheck disable=SC2046
  g++ -shared -o "$out/adatt.node" "$out"/*.o $(node scripts/install/find-libtorch.js --libs) -Wl,--allow-shlib-undefined
  # Every C++ symbol the addon leaves undefined must come from the C++ runtime or from LibTorch's
  # libraries (and theirs: Gloo, NCCL, …, loaded with them).
  local defined="$out/defined.txt"
  # (Symlinks into packages not downloaded, such as libnccl.so, dangle: skip them.)
  for lib in "$libtorch"/lib/*.so*; do nm -D --defined-only "$lib" 2>/dev/null | awk '{print $3}' || true; done |
    sed 's/@.*//' | sort -u >"$defined"
  local missing
  # (Strong references only: weak ones, such as thread_local init hooks, may stay unresolved.)
  missing=$(nm -D --undefined-only "$out/adatt.node" | awk '$1 == "U" {print $2}' | sed 's/@.*//' | grep -E '^_Z' |
    sort -u | comm -23 - "$defined" | c++filt |
    grep -v -E '^(std::|operator new|operator delete|(typeinfo|vtable|VTT) for (std|__cxxabiv1)::)' || true)
  if [ -n "$missing" ]; then
    echo "check-torch2-build: $variant: symbols LibTorch $version does not define:"
    echo "$missing"
    return 1
  fi
  echo "check-torch2-build: $variant: LibTorch $version: every source compiles and the addon links"
}

for variant in "${VARIANTS[@]}"; do
  case $variant in
    cpu) unpack cpu libtorch-dev libtorch2.6 libgloo-dev ;;
    cuda) unpack cuda libtorch-cuda-dev libtorch-cuda-2.6 libgloo-cuda-dev libnccl-dev nvidia-cuda-dev libcu++-dev ;;
    *) echo "usage: $0 [cpu] [cuda]" >&2; exit 2 ;;
  esac
  check "$variant"
done
