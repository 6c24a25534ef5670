#!/usr/bin/env node
'use strict';
// npm install step: use the prebuilt binary when one matches this platform and loads (its LibTorch
// is present), else build from source against the LibTorch that scripts/install/find-libtorch.js finds.
const path = require('node:path');

const root = path.join(__dirname, '..', '..');

function loadPrebuilt() {
  try {
    const binding = require('node-gyp-build')(root);
    binding.info();
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: String(err.message || err).split('\n')[0] };
  }
}

const prebuilt = loadPrebuilt();
if (prebuilt.ok) {
  console.log('adatt: using the prebuilt native addon');
  process.exit(0);
}
console.log(`adatt: no usable prebuilt native addon (${prebuilt.reason});`);
console.log('adatt: building from source against LibTorch (needs a C++17 compiler, make and python3; see docs/install.md)');

const { findLibTorch } = require('./find-libtorch');
try {
  const found = findLibTorch();
  console.log(`adatt: LibTorch ${found.version} (${found.source}${found.cuda ? ', CUDA' : ''}) at ${found.libdir}`);
} catch (err) {
  console.error(`adatt: ${err.message}`);
  process.exit(1);
}
const { compileJobs, runNodeGyp } = require('./node-gyp');
const jobs = compileJobs();
console.log(`adatt: compiling with ${jobs} parallel jobs (set JOBS to choose)`);
const result = runNodeGyp(root, jobs);
if (result.error || result.status !== 0) {
  console.error(
    `adatt: the source build failed${result.error ? ` (${result.error.message})` : ''}; see the output above and docs/install.md`,
  );
  process.exit(result.status || 1);
}
