#!/usr/bin/env node
'use strict';
// Builds the addon with cmake-js into build/Release/adatt.node (where node-gyp-build looks);
// ADATT_NATIVE_BUILD=gyp builds it with node-gyp instead, as a source install does.
// LibTorch is located by scripts/install/find-libtorch.js (LIBTORCH, LIBTORCH_USE_PYTORCH=1, or the system's).
const path = require('node:path');
const os = require('node:os');
const { spawnSync } = require('node:child_process');
const { findLibTorch } = require('./find-libtorch');

const root = path.join(__dirname, '..', '..');
const system = process.env.ADATT_NATIVE_BUILD || 'cmake';
if (system !== 'cmake' && system !== 'gyp') {
  console.error(`adatt: ADATT_NATIVE_BUILD must be 'cmake' (default) or 'gyp', got '${system}'`);
  process.exit(1);
}
let libtorch;
try {
  libtorch = findLibTorch();
} catch (err) {
  console.error(`adatt: cannot build the native addon: ${err.message}`);
  process.exit(1);
}
console.log(`adatt: building against LibTorch ${libtorch.version} (${libtorch.source}${libtorch.cuda ? ', CUDA' : ', CPU'})`);

const debug = process.argv.includes('--debug');
let result;
if (system === 'gyp') {
  // The build a source install runs (binding.gyp), into the same build/Release/adatt.node.
  if (debug) console.error('adatt: --debug applies to the CMake build only');
  const { compileJobs, runNodeGyp } = require('./node-gyp');
  const given = Number(process.env.ADATT_BUILD_JOBS);
  result = runNodeGyp(root, Number.isInteger(given) && given > 0 ? String(given) : compileJobs());
} else {
  const jobs = String(Math.max(1, Math.min(os.cpus().length, Number(process.env.ADATT_BUILD_JOBS) || os.cpus().length)));
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const args = [cmakeJs, 'build', '--directory', root, '--out', path.join(root, 'build'), '--parallel', jobs];
  if (debug) args.push('--debug');
  result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
}
if (result.error || result.status !== 0) {
  console.error(`adatt: native build failed${result.error ? ` (${result.error.message})` : ''} (see the compiler output above).`);
  process.exit(result.status || 1);
}
