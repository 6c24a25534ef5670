#!/usr/bin/env node
'use strict';
// Builds the addon with cmake-js into build/Release/adatt.node (where node-gyp-build looks).
// LibTorch is located by scripts/find-libtorch.js (LIBTORCH, LIBTORCH_USE_PYTORCH=1, or the system's).
const path = require('node:path');
const os = require('node:os');
const { spawnSync } = require('node:child_process');
const { findLibTorch } = require('./find-libtorch');

const root = path.join(__dirname, '..');
let libtorch;
try {
  libtorch = findLibTorch();
} catch (err) {
  console.error(`adatt: cannot build the native addon: ${err.message}`);
  process.exit(1);
}
console.log(`adatt: building against LibTorch ${libtorch.version} (${libtorch.source}${libtorch.cuda ? ', CUDA' : ', CPU'})`);

const jobs = String(Math.max(1, Math.min(os.cpus().length, Number(process.env.ADATT_BUILD_JOBS) || os.cpus().length)));
const debug = process.argv.includes('--debug');
const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'build', '--directory', root, '--out', path.join(root, 'build'), '--parallel', jobs];
if (debug) args.push('--debug');
const result = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root });
if (result.status !== 0) {
  console.error('adatt: native build failed (see the compiler output above).');
  process.exit(result.status || 1);
}
