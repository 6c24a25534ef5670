'use strict';
// The node-gyp build of the addon (binding.gyp): what a source install runs (scripts/install/install.js),
// and `ADATT_NATIVE_BUILD=gyp npm run build:native` (scripts/install/build-native.js), which the LibTorch
// 2.6 run of CI uses so that the gyp build passes the native test suite too.
const os = require('node:os');
const { spawnSync } = require('node:child_process');

/**
 * Parallel compile jobs: node-gyp compiles one file at a time unless told otherwise. A LibTorch
 * translation unit takes about 1.5 GB to compile, so as many jobs as cores and free memory allow;
 * JOBS (node-gyp's own variable) or npm_config_jobs set by the user win.
 */
function compileJobs() {
  const given = process.env.JOBS || process.env.npm_config_jobs;
  if (given) return given;
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  // A container's memory limit (cgroups), when lower than the machine's free memory.
  const limit = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0;
  const memory = limit > 0 ? Math.min(limit, os.freemem()) : os.freemem();
  return String(Math.max(1, Math.min(cores, Math.floor(memory / (1.5 * 2 ** 30)))));
}

/** Runs `node-gyp rebuild` in `root` with `jobs` parallel compile jobs; returns spawnSync's result. */
function runNodeGyp(root, jobs) {
  // npm sets npm_config_node_gyp to the node-gyp it bundles (and npm_config_nodedir where it has one).
  const nodeGyp = process.env.npm_config_node_gyp;
  const args = ['rebuild', '--jobs', jobs];
  const [command, commandArgs] = nodeGyp ? [process.execPath, [nodeGyp, ...args]] : ['node-gyp', args];
  return spawnSync(command, commandArgs, { cwd: root, stdio: 'inherit' });
}

module.exports = { compileJobs, runNodeGyp };
