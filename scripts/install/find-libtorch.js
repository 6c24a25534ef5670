#!/usr/bin/env node
'use strict';
// Finds the LibTorch to build and run against, for CMake (CMakeLists.txt) and gyp (binding.gyp) alike.
// Order: LIBTORCH=<root of a LibTorch distribution>, LIBTORCH_USE_PYTORCH=1 (the LibTorch inside the
// torch package of PYTHON or python3), else the system LibTorch (Debian's libtorch-dev).
//
// Usage: node scripts/install/find-libtorch.js [--json | --cmake-prefix | --include | --extra-include | --libdir | --cflags | --libs]
// --extra-include: NCCL's and CUDA's header folders, needed when the LibTorch has c10d's NCCL backend
// (--include names them too, after LibTorch's own).
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

class LibTorchNotFound extends Error {}

function exists(p) {
  try {
    fs.accessSync(p);
    return true;
  } catch {
    return false;
  }
}

function fromDistribution(root, source) {
  const resolved = path.resolve(root);
  const include = path.join(resolved, 'include');
  const libdir = path.join(resolved, 'lib');
  const cmakeDir = path.join(resolved, 'share', 'cmake', 'Torch');
  if (!exists(path.join(include, 'torch', 'csrc', 'api', 'include', 'torch', 'torch.h'))) {
    throw new LibTorchNotFound(
      `${source}: ${resolved} has no include/torch/csrc/api/include/torch/torch.h; ` +
        'point it at the root of a LibTorch distribution (the folder holding include/, lib/, share/).',
    );
  }
  if (!exists(path.join(libdir, 'libtorch.so'))) {
    throw new LibTorchNotFound(`${source}: ${libdir} has no libtorch.so.`);
  }
  return {
    source,
    root: resolved,
    includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
    libdir,
    cmakePrefix: exists(cmakeDir) ? path.join(resolved, 'share', 'cmake') : resolved,
  };
}

function fromPython() {
  const python = process.env.PYTHON || 'python3';
  let torchDir;
  try {
    torchDir = execFileSync(python, ['-c', 'import os, torch; print(os.path.dirname(torch.__file__))'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch (err) {
    throw new LibTorchNotFound(
      `LIBTORCH_USE_PYTORCH=1: \`${python} -c "import torch"\` failed ` +
        `(${String(err.stderr || err.message)
          .trim()
          .split('\n')
          .pop()}). Install torch for that interpreter ` +
        '(pip install torch) or set PYTHON to an interpreter that has it.',
    );
  }
  return fromDistribution(torchDir, `LIBTORCH_USE_PYTORCH=1 (${python}: ${torchDir})`);
}

function multiarchLibDirs() {
  const dirs = [];
  try {
    const triplet = execFileSync('gcc', ['-print-multiarch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (triplet) dirs.push(path.join('/usr/lib', triplet));
  } catch {
    // no gcc (prebuilt install): fall back to the usual locations
  }
  dirs.push(`/usr/lib/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, '/usr/lib64', '/usr/lib', '/usr/local/lib');
  return dirs;
}

function fromSystem() {
  const libdir = multiarchLibDirs().find((dir) => exists(path.join(dir, 'libtorch.so')));
  const include = ['/usr/include', '/usr/local/include'].find((dir) =>
    exists(path.join(dir, 'torch', 'csrc', 'api', 'include', 'torch', 'torch.h')),
  );
  if (!libdir || !include) {
    throw new LibTorchNotFound(
      "No LibTorch found. Install Debian's LibTorch (apt-get install libtorch-dev libgloo-dev), " +
        'or set LIBTORCH=/path/to/libtorch (an unpacked LibTorch distribution), ' +
        'or LIBTORCH_USE_PYTORCH=1 to use the LibTorch inside an installed Python torch (CUDA builds).',
    );
  }
  return {
    source: 'system',
    root: path.dirname(include),
    includeDirs: [include, path.join(include, 'torch', 'csrc', 'api', 'include')],
    libdir,
    cmakePrefix: path.join(libdir, 'cmake'),
  };
}

function readVersion(includeDirs) {
  const header = path.join(includeDirs[1], 'torch', 'version.h');
  const text = exists(header) ? fs.readFileSync(header, 'utf8') : '';
  const field = (name) => (text.match(new RegExp(`#define TORCH_VERSION_${name} (\\d+)`)) || [])[1];
  return field('MAJOR') ? `${field('MAJOR')}.${field('MINOR')}.${field('PATCH')}` : 'unknown';
}

// LibTorch builds differ in the C++ ABI of std::string; the addon must match the library.
function readCxx11Abi(found) {
  const candidates = [
    path.join(found.cmakePrefix, 'Torch', 'TorchConfig.cmake'),
    path.join(found.libdir, 'cmake', 'Torch', 'TorchConfig.cmake'),
    path.join(found.root, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'),
  ];
  for (const file of candidates) {
    if (!exists(file)) continue;
    const match = fs.readFileSync(file, 'utf8').match(/_GLIBCXX_USE_CXX11_ABI=(\d)/);
    if (match) return Number(match[1]);
  }
  return 1;
}

// Definitions LibTorch's CMake targets pass to their users (e.g. USE_C10D_GLOO, which enables the
// c10d Gloo headers); the gyp build must pass them too.
function readInterfaceDefinitions(found) {
  const candidates = [
    path.join(found.cmakePrefix, 'Caffe2', 'Caffe2Targets.cmake'),
    path.join(found.root, 'share', 'cmake', 'Caffe2', 'Caffe2Targets.cmake'),
  ];
  const definitions = new Set();
  for (const file of candidates) {
    if (!exists(file)) continue;
    for (const match of fs.readFileSync(file, 'utf8').matchAll(/INTERFACE_COMPILE_DEFINITIONS "([^"]*)"/g)) {
      for (const definition of match[1].split(';')) if (/^USE_[A-Z0-9_]+$/.test(definition)) definitions.add(definition);
    }
    break;
  }
  return [...definitions].sort();
}

function subdirs(dir) {
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => path.join(dir, d.name));
  } catch {
    return [];
  }
}

// c10d's NCCL header (compiled when the LibTorch has USE_C10D_NCCL) includes nccl.h and ATen's CUDA
// headers (CUDA runtime, cuBLAS, cuSPARSE, …), which a pip-installed torch keeps in its nvidia-*
// packages (site-packages/nvidia/<package>/include) and a LibTorch distribution leaves to the CUDA
// toolkit. Returns the folders to add, in search order.
function cudaIncludeDirs(found, env) {
  const dirs = [
    ...new Set([
      env.NCCL_INCLUDE_DIR,
      env.NCCL_HOME && path.join(env.NCCL_HOME, 'include'),
      env.NCCL_ROOT && path.join(env.NCCL_ROOT, 'include'),
      ...subdirs(path.join(found.root, '..', 'nvidia')).map((dir) => path.join(dir, 'include')),
      ...[env.CUDA_HOME, env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean).map((dir) => path.join(dir, 'include')),
    ]),
  ].filter((dir) => dir && exists(dir) && !found.includeDirs.includes(dir));
  const searched = [...found.includeDirs, ...dirs, '/usr/include'];
  const requireHeader = (header, hint) => {
    if (!searched.some((dir) => exists(path.join(dir, header)))) {
      throw new LibTorchNotFound(
        `${found.source}: this LibTorch was built with NCCL, and its c10d headers need ${header}, ` +
          `which is in none of ${searched.join(', ')}. ${hint}`,
      );
    }
  };
  requireHeader('nccl.h', "Install NCCL's headers (pip install nvidia-nccl-cu12 or -cu13, or libnccl-dev) or set NCCL_INCLUDE_DIR.");
  requireHeader('cuda_runtime_api.h', "Install the CUDA toolkit's headers or set CUDA_HOME.");
  return [...new Set(dirs)];
}

function findLibTorch(env = process.env) {
  let found;
  if (env.LIBTORCH) found = fromDistribution(env.LIBTORCH, `LIBTORCH=${env.LIBTORCH}`);
  else if (env.LIBTORCH_USE_PYTORCH === '1') found = fromPython();
  else found = fromSystem();
  const cuda = exists(path.join(found.libdir, 'libtorch_cuda.so'));
  const libs = ['torch', 'torch_cpu', 'c10', ...(cuda ? ['torch_cuda', 'c10_cuda'] : [])];
  const definitions = readInterfaceDefinitions(found);
  const extraIncludeDirs = definitions.includes('USE_C10D_NCCL') ? cudaIncludeDirs(found, env) : [];
  return {
    ...found,
    includeDirs: [...found.includeDirs, ...extraIncludeDirs],
    extraIncludeDirs,
    version: readVersion(found.includeDirs),
    cuda,
    cxx11Abi: readCxx11Abi(found),
    libs,
    definitions,
  };
}

module.exports = { findLibTorch, LibTorchNotFound };

if (require.main === module) {
  try {
    const found = findLibTorch();
    const mode = process.argv[2] || '--json';
    const outputs = {
      '--json': () => JSON.stringify(found, null, 2),
      '--cmake-prefix': () => found.cmakePrefix,
      '--include': () => found.includeDirs.join(' '),
      '--extra-include': () => found.extraIncludeDirs.join(' '),
      '--libdir': () => found.libdir,
      '--cflags': () => [`-D_GLIBCXX_USE_CXX11_ABI=${found.cxx11Abi}`, ...found.definitions.map((d) => `-D${d}`)].join(' '),
      '--libs': () =>
        [
          `-L${found.libdir}`,
          `-Wl,-rpath,${found.libdir}`,
          '-Wl,--no-as-needed',
          ...found.libs.map((l) => `-l${l}`),
          '-Wl,--as-needed',
        ].join(' '),
    };
    if (!outputs[mode]) throw new Error(`unknown option ${mode}; use one of ${Object.keys(outputs).join(', ')}`);
    process.stdout.write(`${outputs[mode]()}\n`);
  } catch (err) {
    process.stderr.write(`find-libtorch: ${err.message}\n`);
    process.exit(1);
  }
}
