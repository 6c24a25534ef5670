#!/usr/bin/env bash
# The full test suite (what `npm test` and CI run): set up what is missing, type-check lib/ and test/,
# lint and check the formatting of the whole tree (scripts/lint.sh), run vitest. Given test files
# (`npm test -- test/x.test.ts`, as the LibTorch 2.6 run does), it skips the lint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.test.json
# ADATT_LINT=0 skips it too (the trixie chroot of scripts/test-torch2.sh: its clang-format is 19).
if [ $# -eq 0 ] && [ "${ADATT_LINT:-1}" != 0 ]; then bash scripts/lint.sh; fi
npx vitest run "$@"
