#!/usr/bin/env bash
# Lint and formatting checks of the whole tree (`npm run lint`; `npm test` runs it before vitest):
# Biome over the TypeScript and JavaScript (biome.jsonc), clang-format over the C++ (.clang-format).
# `--fix` rewrites the files instead of failing.
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
[ "${1:-}" = --fix ] && fix=1
cpp_files=(native/src/*.cpp native/binding/*.cpp native/binding/*.h native/include/adatt/*.h bench/*.cpp)
# Formatting differs between clang-format releases: the checked style is Debian bookworm's, 14.
version=$(clang-format --version 2>/dev/null | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$version" != 14 ]; then
  echo "lint: needs clang-format 14 (Debian bookworm's clang-format package); found ${version:-none}" >&2
  exit 1
fi
if [ "$fix" = 1 ]; then
  npx biome check --write
  clang-format -i "${cpp_files[@]}"
else
  npx biome check
  clang-format --dry-run --Werror "${cpp_files[@]}"
fi
