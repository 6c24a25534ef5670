#!/usr/bin/env bash
# Makes a fresh Debian bookworm machine ready to build, test and run adatt, and is quick when it
# already is: Debian packages (LibTorch, c10d headers, OpenBLAS, python3-torch for the reference
# tests), `npm ci`, the native addon and the TypeScript build. Run as root (or with sudo available).
# ADATT_SKIP_APT=1 skips the Debian packages (e.g. when LIBTORCH points at another LibTorch).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(libtorch-dev libgloo-dev python3-torch python3-xxhash libopenblas0-pthread cmake g++ make chromium clang-format)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

if [ "${ADATT_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for package in "${APT_PACKAGES[@]}"; do installed "$package" || missing+=("$package"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    as_root=()
    if [ "$(id -u)" != 0 ]; then
      command -v sudo >/dev/null || { echo "setup: run as root, or install: ${missing[*]}" >&2; exit 1; }
      as_root=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

# Anything in $2.. newer than $1 (or $1 missing) means $1 must be rebuilt.
stale() {
  local target=$1
  shift
  [ ! -e "$target" ] || [ -n "$(find "$@" -newer "$target" -type f -print -quit 2>/dev/null)" ]
}

if stale node_modules/.package-lock.json package-lock.json package.json; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --ignore-scripts
fi

if stale build/Release/adatt.node native CMakeLists.txt binding.gyp scripts/install; then
  echo "setup: building the native addon"
  npm run --silent build:native
fi

if stale dist/index.js lib tsconfig.json; then
  echo "setup: compiling TypeScript"
  npm run --silent build:ts
fi
echo "setup: ready ($(node -p "require('./dist').info().libtorchVersion" 2>/dev/null | sed 's/^/LibTorch /'))"
