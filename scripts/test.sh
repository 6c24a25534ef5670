#!/usr/bin/env bash
# The full test suite (what `npm test` and CI run): set up what is missing, type-check lib/ and test/,
# lint and check the formatting (Biome, biome.jsonc), run vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.test.json
npx biome check
npx vitest run "$@"
