#!/usr/bin/env node
'use strict';
// npm install step: use the prebuilt binary when one matches this platform and loads (its LibTorch
// is present), else build from source against the LibTorch that scripts/find-libtorch.js finds.
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.join(__dirname, '..');

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
/**
 * Parallel compile jobs: node-gyp compiles one file at a time unless told otherwise. A LibTorch
 * translation unit takes about 1.5 GB to compile, so as many jobs as cores and free memory allow;
 * JOBS (node-gyp's own variable) or npm_config_jobs set by the user win.
 */
function compileJobs() {
  const given = process.env.JOBS || process.env.npm_config_jobs;
  if (given) return given;
  const os = require('node:os');
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  // A container's memory limit (cgroups), when lower than the machine's free memory.
  const limit = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  const memory = limit > 0 ? Math.min(limit, os.freemem()) : os.freemem();
  return String(Math.max(1, Math.min(cores, Math.floor(memory / (1.5 * 2 ** 30)))));
}

// npm sets npm_config_node_gyp to the node-gyp it bundles.
const nodeGyp = process.env.npm_config_node_gyp;
const args = ['rebuild', '--jobs', compileJobs()];
console.log(`adatt: compiling with ${args[2]} parallel jobs (set JOBS to choose)`);
const command = nodeGyp ? [process.execPath, [nodeGyp, ...args]] : ['node-gyp', args];
const result = spawnSync(command[0], command[1], { cwd: root, stdio: 'inherit' });
if (result.error || result.status !== 0) {
  console.error(
    `adatt: the source build failed${result.error ? ` (${result.error.message})` : ''}; see the output above and docs/install.md`,
  );
  process.exit(result.status || 1);
}
