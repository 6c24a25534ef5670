/**
 * `adatt doctor`: checks what installs of native ML packages trip over — which LibTorch is found
 * and loaded, the shared libraries the addon links (by name, with the fix for each missing one),
 * CUDA build against driver, visible GPUs, NCCL, the BLAS and its threads. `probeSystem` gathers
 * the facts of this process and machine; `diagnose` turns facts into checks and touches nothing but
 * files below `inputs.root`, so tests hand it stand-in layouts.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAddon, nativeLoadError, type RawAddon, type RawInfo } from './addon';
import { DEFAULT_LIBRARY_DIRS, parseLdconfigCache, resolveDependencies, type Dependencies, type MissingLibrary } from './elf';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  /** Stable name for programs: addon, libtorch, libtorch-version, shared-libraries, missing-library, cuda, gpus, nccl, blas. */
  id: string;
  title: string;
  status: CheckStatus;
  message: string;
  /** What to do about a warn or fail. */
  fix?: string;
  details?: Record<string, unknown>;
}

export interface DoctorReport {
  /** No check failed (warnings allowed). */
  ok: boolean;
  counts: Record<CheckStatus, number>;
  checks: DoctorCheck[];
}

/** The fields of scripts/install/find-libtorch.js's result that the checks read. */
export interface FoundLibTorch {
  /** 'LIBTORCH=…', 'LIBTORCH_USE_PYTORCH=1 (…)' or 'system'. */
  source: string;
  root: string;
  libdir: string;
  version: string;
  cuda: boolean;
  definitions: string[];
}

export interface NvidiaDriver {
  version: string;
  /** GPU names from nvidia-smi ([] when only /proc/driver/nvidia tells of a driver). */
  gpus: string[];
}

/** Everything `diagnose` looks at: gathered by `probeSystem`, or written by a test. */
export interface DoctorInputs {
  env: Readonly<Record<string, string | undefined>>;
  /** Folder every absolute path is read below: '/' on a live system. */
  root: string;
  /** The addon file adatt loads (undefined: none found). */
  addonPath?: string;
  /** info() of the loaded addon, or why it did not load (a NativeLoadError). */
  load: { info: RawInfo } | { error: Error };
  /** What find-libtorch.js finds for a source build, or its explanation of why nothing. */
  libtorch: FoundLibTorch | { error: string };
  /** /proc/self/maps of the process that loaded the addon. */
  procMaps?: string;
  /** /etc/ld.so.cache as `ldconfig -p` lists it. */
  ldCache: ReadonlyMap<string, readonly string[]>;
  nvidia?: NvidiaDriver;
}

const BUILD_COMMAND =
  '`npm rebuild adatt` (in a checkout `npm run build:native`), choosing the LibTorch with ' +
  'LIBTORCH=/path/to/libtorch or LIBTORCH_USE_PYTORCH=1 (docs/install.md)';
const REBUILD = `rebuild the addon: ${BUILD_COMMAND}`;
const INSTALL_LIBTORCH =
  "install Debian's LibTorch (`apt-get install libtorch-dev libgloo-dev`), or point the build at one: " +
  'LIBTORCH=/path/to/libtorch, or LIBTORCH_USE_PYTORCH=1 for the LibTorch inside `pip install torch`';
const INSTALL_OPENBLAS = '`apt-get install libopenblas0-pthread` (Debian then points libblas.so.3 at OpenBLAS)';
const CUDA_GPU_BUILD = 'for GPUs, build against a CUDA LibTorch: `pip install torch`, then `LIBTORCH_USE_PYTORCH=1 npm rebuild adatt`';

/** Oldest Linux driver each CUDA major version runs on (NVIDIA's minor-version compatibility table). */
const MIN_DRIVER_FOR_CUDA: Readonly<Record<number, string>> = { 11: '450.80.02', 12: '525.60.13', 13: '580.65.06' };

const CUDA_RUNTIME_LIBRARY =
  /^lib(cudart|cublas|cublasLt|cudnn\w*|cufft\w*|curand|cusparse\w*|cusolver\w*|nvrtc\w*|nvToolsExt|nvJitLink|cupti|nccl|cufile\w*|nvshmem\w*|nvperf\w*|caffe2_nvrtc)\.so/;

/** The message of the addon's load check (native/binding/libtorch_runtime.cpp) for a LibTorch of another version. */
const ADDON_VERSION_REFUSAL = /built against LibTorch \S+ but LibTorch \S+ is loaded/;

function majorMinor(version: string): string {
  return /^\d+\.\d+/.exec(version)?.[0] ?? version;
}

/** Compares dotted versions numerically: '525.60.13' < '535.104.05'. */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i += 1) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}

function readText(root: string, file: string): string | undefined {
  try {
    return fs.readFileSync(path.join(root, file), 'utf8');
  } catch {
    return undefined;
  }
}

function realFolder(root: string, folder: string): string {
  try {
    return fs.realpathSync(path.join(root, folder));
  } catch {
    return path.join(root, folder);
  }
}

/** find-libtorch's rule, in the words of docs/install.md. */
function ruleOf(source: string): string {
  if (source.startsWith('LIBTORCH=')) return `rule 1, ${source}`;
  if (source.startsWith('LIBTORCH_USE_PYTORCH')) return `rule 2, ${source}`;
  return "rule 3, the system LibTorch (Debian's libtorch-dev)";
}

/**
 * The CUDA version a LibTorch was built for: a pip torch's version.py (`cuda = '12.4'`), a LibTorch
 * distribution's build-version (`2.5.1+cu124`), else the major version in libcudart's soname.
 */
export function cudaVersionOf(root: string, torchRoots: readonly string[], libraryNames: readonly string[]): string | undefined {
  for (const torchRoot of torchRoots) {
    const versionPy = readText(root, path.join(torchRoot, 'version.py'));
    const fromPython = versionPy && /^cuda\s*(?::[^=\n]*)?=\s*['"](\d+\.\d+)/m.exec(versionPy)?.[1];
    if (fromPython) return fromPython;
    const buildVersion = readText(root, path.join(torchRoot, 'build-version'));
    const fromDistribution = buildVersion && /\+cu(\d+)(\d)\b/.exec(buildVersion);
    if (fromDistribution) return `${fromDistribution[1]}.${fromDistribution[2]}`;
  }
  for (const name of libraryNames) {
    const major = /^libcudart\.so\.(\d+)/.exec(name)?.[1];
    if (major) return major;
  }
  return undefined;
}

/** What to do about one library the loader cannot find. */
export function fixForMissingLibrary(missing: MissingLibrary, context: { cudaVersion?: string; libtorchDirs: readonly string[] }): string {
  const { name } = missing;
  if (/^lib(torch|c10|shm|caffe2)\w*\.so/.test(name)) {
    return `the LibTorch the addon was built against is gone: ${INSTALL_LIBTORCH}; or add its lib/ folder to LD_LIBRARY_PATH; or ${REBUILD}`;
  }
  if (/^libopenblas/.test(name)) return INSTALL_OPENBLAS;
  if (/^lib(blas|cblas|lapack)\.so/.test(name)) return `${INSTALL_OPENBLAS}; it provides ${name}`;
  if (/^libgloo/.test(name)) return '`apt-get install libgloo-dev`';
  if (/^libgomp/.test(name)) return '`apt-get install libgomp1`';
  if (/^libstdc\+\+/.test(name)) return '`apt-get install libstdc++6`';
  if (/^libcuda\.so/.test(name)) {
    return (
      'the NVIDIA driver provides libcuda.so.1: install it (in a container, run with the GPUs passed through, e.g. `--gpus all`), ' +
      `or use a CPU build of LibTorch (${INSTALL_LIBTORCH})`
    );
  }
  if (CUDA_RUNTIME_LIBRARY.test(name)) {
    const cuda = context.cudaVersion ? `CUDA ${context.cudaVersion}` : 'the CUDA version';
    return (
      `install the runtime of ${cuda} this LibTorch was built for: \`pip install torch\` brings it as nvidia-* packages ` +
      `(use that torch with LIBTORCH_USE_PYTORCH=1), or install the CUDA toolkit and add its lib64/ folder to LD_LIBRARY_PATH`
    );
  }
  // A dependency of LibTorch's own libraries: its package or distribution is incomplete.
  if (context.libtorchDirs.some((dir) => path.posix.dirname(missing.neededBy) === dir)) {
    return (
      `${name} is a dependency of LibTorch itself: reinstall it (\`apt-get install --reinstall libtorch-dev\`, or unpack the ` +
      'LibTorch distribution / `pip install --force-reinstall torch` again)'
    );
  }
  return `install the package that provides ${name} (\`apt-file search ${name}\` names it), or add its folder to LD_LIBRARY_PATH`;
}

/** Shared libraries in /proc/self/maps that look like a BLAS. */
export function mappedBlasLibraries(procMaps: string): string[] {
  const files = new Set<string>();
  for (const line of procMaps.split('\n')) {
    const file = line.trim().split(/\s+/)[5];
    if (file?.startsWith('/') && /^lib(openblas|mkl|blas|cblas|blis|flexiblas)/.test(path.posix.basename(file))) files.add(file);
  }
  return [...files];
}

type BlasKind = 'OpenBLAS' | 'MKL' | 'BLIS' | 'ATLAS' | 'FlexiBLAS' | 'reference BLAS';

function blasKind(file: string): BlasKind {
  const name = path.posix.basename(file);
  if (/openblas/.test(file)) return 'OpenBLAS';
  if (name.startsWith('libmkl')) return 'MKL';
  if (/blis/.test(file)) return 'BLIS';
  if (/\/atlas\//.test(file)) return 'ATLAS';
  if (name.startsWith('libflexiblas')) return 'FlexiBLAS';
  return 'reference BLAS'; // Debian's libblas3 (/usr/lib/<triplet>/blas/) or an unknown libblas.so
}

function summarise(checks: DoctorCheck[]): DoctorReport {
  const counts: Record<CheckStatus, number> = { ok: 0, warn: 0, fail: 0 };
  for (const check of checks) counts[check.status] += 1;
  return { ok: counts.fail === 0, counts, checks };
}

/** Runs every check on `inputs`. */
export function diagnose(inputs: DoctorInputs): DoctorReport {
  const info = 'info' in inputs.load ? inputs.load.info : undefined;
  const loadError = 'error' in inputs.load ? inputs.load.error : undefined;
  const found = 'error' in inputs.libtorch ? undefined : inputs.libtorch;
  const dependencies = linkDependencies(inputs);
  const libraryNames =
    dependencies && !(dependencies instanceof Error)
      ? [...dependencies.libraries.map((library) => library.name), ...dependencies.missing.map((missing) => missing.name)]
      : [];
  const loadedRoot = info?.libtorchPath ? path.posix.dirname(path.posix.dirname(info.libtorchPath)) : undefined;
  const torchRoots = [loadedRoot, found?.root].filter((root): root is string => root !== undefined);
  // info().cudaBuilt is at::hasCUDA(), false without a usable GPU; a CUDA build links libtorch_cuda.so.
  const linksCuda = libraryNames.some((name) => name.startsWith('libtorch_cuda'));
  const cudaBuilt = Boolean(info?.cudaBuilt) || linksCuda || (libraryNames.length === 0 && Boolean(found?.cuda));
  const cudaVersion = cudaBuilt ? cudaVersionOf(inputs.root, torchRoots, libraryNames) : undefined;
  const libtorchDirs = [found?.libdir, info?.libtorchPath && path.posix.dirname(info.libtorchPath)].filter((dir): dir is string =>
    Boolean(dir),
  );

  return summarise([
    addonCheck(inputs, loadError, dependencies),
    libtorchCheck(inputs, info, found),
    versionCheck(info, loadError, found),
    ...linkChecks(inputs, dependencies, { cudaVersion, libtorchDirs }),
    cudaCheck(inputs, cudaBuilt, cudaVersion),
    gpuCheck(inputs, info, cudaBuilt),
    ncclCheck(info, found, cudaBuilt),
    blasCheck(inputs, info),
  ]);
}

function linkDependencies(inputs: DoctorInputs): Dependencies | Error | undefined {
  if (inputs.addonPath === undefined) return undefined;
  try {
    return resolveDependencies(inputs.addonPath, {
      root: inputs.root,
      libraryPath: (inputs.env.LD_LIBRARY_PATH ?? '').split(/[:;]/).filter(Boolean),
      ldCache: inputs.ldCache,
      defaultDirs: DEFAULT_LIBRARY_DIRS,
    });
  } catch (err) {
    return err as Error;
  }
}

function addonCheck(inputs: DoctorInputs, loadError: Error | undefined, dependencies: Dependencies | Error | undefined): DoctorCheck {
  const title = 'native addon';
  if (!loadError)
    return { id: 'addon', title, status: 'ok', message: `${inputs.addonPath ?? 'the addon'} loads`, details: { path: inputs.addonPath } };
  const [summary, ...rest] = loadError.message.split('\nCause: ');
  const cause = rest.join('\nCause: ');
  const missingCount = dependencies && !(dependencies instanceof Error) ? dependencies.missing.length : 0;
  let fix: string;
  if (inputs.addonPath === undefined) fix = `build the addon: ${BUILD_COMMAND}`;
  else if (missingCount > 0) fix = `make the missing librar${missingCount === 1 ? 'y' : 'ies'} below findable (each check says how)`;
  else fix = REBUILD;
  return {
    id: 'addon',
    title,
    status: 'fail',
    // The loader's own words name the missing library or symbol; the error's advice goes into the fix.
    message:
      inputs.addonPath === undefined
        ? `no compiled native addon found: ${(cause || summary!).trim()}`
        : cause
          ? `${inputs.addonPath} does not load: ${cause.trim()}`
          : summary!.replace(/^adatt: /, ''),
    fix,
    details: { path: inputs.addonPath ?? null, error: loadError.message },
  };
}

function libtorchCheck(inputs: DoctorInputs, info: RawInfo | undefined, found: FoundLibTorch | undefined): DoctorCheck {
  const title = 'LibTorch';
  if (!found) {
    const error = (inputs.libtorch as { error: string }).error;
    // A prebuilt addon runs on LibTorch's libraries alone; only a source build needs the headers.
    if (info?.libtorchPath) {
      return {
        id: 'libtorch',
        title,
        status: 'warn',
        message: `the addon runs on ${info.libtorchPath}, but no LibTorch for a source build is found: ${error}`,
        fix: `only needed to rebuild: ${INSTALL_LIBTORCH}`,
        details: { loaded: info.libtorchPath, error },
      };
    }
    return { id: 'libtorch', title, status: 'fail', message: error, fix: INSTALL_LIBTORCH, details: { error } };
  }
  const details = {
    rule: ruleOf(found.source),
    source: found.source,
    root: found.root,
    libdir: found.libdir,
    version: found.version,
    cuda: found.cuda,
  };
  const message = `${found.version} (${found.cuda ? 'CUDA' : 'CPU'}) in ${found.libdir}, found by ${ruleOf(found.source)}`;
  const loadedDir = info?.libtorchPath ? path.posix.dirname(info.libtorchPath) : undefined;
  if (loadedDir && realFolder(inputs.root, loadedDir) !== realFolder(inputs.root, found.libdir)) {
    return {
      id: 'libtorch',
      title,
      status: 'warn',
      details: { ...details, loaded: info!.libtorchPath },
      message: `${message}; but the addon loads the LibTorch in ${loadedDir}, so a rebuild would switch LibTorch`,
      fix: `set LIBTORCH (or LIBTORCH_USE_PYTORCH=1) to the LibTorch you mean before rebuilding; unset, find-libtorch takes ${found.libdir}`,
    };
  }
  return { id: 'libtorch', title, status: 'ok', message, details };
}

function versionCheck(info: RawInfo | undefined, loadError: Error | undefined, found: FoundLibTorch | undefined): DoctorCheck {
  const title = 'LibTorch version';
  if (!info) {
    // The addon's own load check refuses a LibTorch of another major.minor version.
    if (loadError && ADDON_VERSION_REFUSAL.test(loadError.message)) {
      return { id: 'libtorch-version', title, status: 'fail', message: loadError!.message, fix: REBUILD };
    }
    return { id: 'libtorch-version', title, status: 'warn', message: 'not checked: the addon does not load', fix: 'see "native addon"' };
  }
  const details = {
    built: info.libtorchVersion,
    loaded: info.runtimeLibtorchVersion || null,
    path: info.libtorchPath,
    rebuild: found?.version ?? null,
  };
  if (!info.runtimeLibtorchVersion) {
    return {
      id: 'libtorch-version',
      title,
      status: 'warn',
      details,
      message: `built against ${info.libtorchVersion}; the version of the loaded LibTorch (${info.libtorchPath || 'unknown path'}) cannot be told`,
      fix: 'nothing, if it works; a LibTorch distribution names its version in build-version, a pip torch in version.py',
    };
  }
  const message = `built against ${info.libtorchVersion}, loads ${info.runtimeLibtorchVersion} (${info.libtorchPath})`;
  if (majorMinor(info.libtorchVersion) !== majorMinor(info.runtimeLibtorchVersion)) {
    return { id: 'libtorch-version', title, status: 'fail', message, fix: REBUILD, details };
  }
  if (found && found.version !== 'unknown' && majorMinor(found.version) !== majorMinor(info.libtorchVersion)) {
    return {
      id: 'libtorch-version',
      title,
      status: 'warn',
      details,
      message: `${message}; a rebuild now would use LibTorch ${found.version} (${found.libdir})`,
      fix: 'set LIBTORCH / LIBTORCH_USE_PYTORCH to the LibTorch you mean before rebuilding',
    };
  }
  return { id: 'libtorch-version', title, status: 'ok', message, details };
}

function linkChecks(
  inputs: DoctorInputs,
  dependencies: Dependencies | Error | undefined,
  context: { cudaVersion?: string; libtorchDirs: readonly string[] },
): DoctorCheck[] {
  const title = 'shared libraries';
  if (dependencies === undefined) {
    return [{ id: 'shared-libraries', title, status: 'warn', message: 'not checked: no addon file found', fix: 'see "native addon"' }];
  }
  if (dependencies instanceof Error) {
    return [{ id: 'shared-libraries', title, status: 'fail', message: `the addon cannot be read: ${dependencies.message}`, fix: REBUILD }];
  }
  const { object, libraries, missing } = dependencies;
  const list = (entries: readonly string[]): string => (entries.length ? entries.join(':') : 'none');
  const searchNote = inputs.env.LD_LIBRARY_PATH ? `; LD_LIBRARY_PATH ${inputs.env.LD_LIBRARY_PATH}` : '';
  const summary = `RUNPATH ${list(object.runpath)}; RPATH ${list(object.rpath)}${searchNote}; needs ${object.needed.join(', ') || 'nothing'}`;
  const details = {
    addon: object.path,
    runpath: object.runpath,
    rpath: object.rpath,
    needed: object.needed,
    resolved: Object.fromEntries(libraries.slice(1).map((library) => [library.name, library.path])),
    missing: missing.map((m) => m.name),
    truncated: dependencies.truncated,
  };
  const checks: DoctorCheck[] = [
    {
      id: 'shared-libraries',
      title,
      details,
      status: missing.length ? 'fail' : 'ok',
      message: missing.length
        ? `${missing.length} librar${missing.length === 1 ? 'y' : 'ies'} cannot be found: ${missing.map((m) => m.name).join(', ')}. ${summary}`
        : `all ${libraries.length - 1} libraries resolve${dependencies.truncated ? ' (the first ones checked)' : ''}. ${summary}`,
      ...(missing.length ? { fix: 'see each missing library below' } : {}),
    },
  ];
  for (const library of missing) {
    const skipped = library.skipped.length ? `; skipped ${library.skipped.join(', ')}` : '';
    checks.push({
      id: 'missing-library',
      title: library.name,
      status: 'fail',
      message: `${library.name}, needed by ${library.neededBy}, is in none of ${library.searched.join(', ')} nor the ld.so cache${skipped}`,
      fix: fixForMissingLibrary(library, context),
      details: { library: library.name, neededBy: library.neededBy, searched: library.searched, skipped: library.skipped },
    });
  }
  return checks;
}

function cudaCheck(inputs: DoctorInputs, cudaBuilt: boolean, cudaVersion: string | undefined): DoctorCheck {
  const title = 'CUDA';
  const driver = inputs.nvidia;
  const details = { built: cudaBuilt, cudaVersion: cudaVersion ?? null, driver: driver?.version ?? null };
  const driverText = driver ? `NVIDIA driver ${driver.version}${driver.gpus.length ? ` (${driver.gpus.join(', ')})` : ''}` : '';
  if (!cudaBuilt) {
    if (!driver) return { id: 'cuda', title, status: 'ok', message: 'CPU LibTorch; no NVIDIA driver', details };
    return {
      id: 'cuda',
      title,
      status: 'warn',
      message: `${driverText} is present, but this LibTorch is CPU-only`,
      fix: CUDA_GPU_BUILD,
      details,
    };
  }
  const build = `CUDA ${cudaVersion ?? '(version unknown)'} build of LibTorch`;
  const minimum = cudaVersion ? MIN_DRIVER_FOR_CUDA[Number(cudaVersion.split('.')[0])] : undefined;
  if (!driver) {
    return {
      id: 'cuda',
      title,
      status: 'warn',
      details,
      message: `${build}, but no NVIDIA driver is loaded (no /proc/driver/nvidia/version, no nvidia-smi): everything runs on the CPU`,
      fix: `install the NVIDIA driver${minimum ? ` (${minimum} or newer)` : ''}; in a container, pass the GPUs through (e.g. \`--gpus all\`)`,
    };
  }
  if (minimum && compareVersions(driver.version, minimum) < 0) {
    return {
      id: 'cuda',
      title,
      status: 'fail',
      details: { ...details, minimumDriver: minimum },
      message: `${build}, but ${driverText} is older than CUDA ${cudaVersion} needs (${minimum})`,
      fix: `upgrade the NVIDIA driver to ${minimum} or newer, or use a torch built for an older CUDA`,
    };
  }
  return {
    id: 'cuda',
    title,
    status: 'ok',
    message: `${build}; ${driverText}${minimum ? ` (CUDA ${cudaVersion} needs ${minimum})` : ''}`,
    details,
  };
}

function gpuCheck(inputs: DoctorInputs, info: RawInfo | undefined, cudaBuilt: boolean): DoctorCheck {
  const title = 'GPUs';
  const visible = inputs.env.CUDA_VISIBLE_DEVICES;
  const visibleText = visible === undefined ? 'CUDA_VISIBLE_DEVICES unset' : `CUDA_VISIBLE_DEVICES=${JSON.stringify(visible)}`;
  const driverGpus = inputs.nvidia?.gpus ?? [];
  const details = {
    cudaVisibleDevices: visible ?? null,
    deviceCount: info?.cudaDeviceCount ?? null,
    cudaAvailable: info?.cudaAvailable ?? null,
    driverGpus,
  };
  if (!cudaBuilt) return { id: 'gpus', title, status: 'ok', message: `none used (CPU LibTorch); ${visibleText}`, details };
  if (!info)
    return {
      id: 'gpus',
      title,
      status: 'warn',
      message: `not counted: the addon does not load; ${visibleText}`,
      fix: 'see "native addon"',
      details,
    };
  if (info.cudaAvailable && info.cudaDeviceCount > 0) {
    return {
      id: 'gpus',
      title,
      status: 'ok',
      message: `${info.cudaDeviceCount} visible to LibTorch; ${visibleText}${driverGpus.length ? `; the driver lists ${driverGpus.join(', ')}` : ''}`,
      details,
    };
  }
  if (!inputs.nvidia)
    return { id: 'gpus', title, status: 'warn', message: `none visible (no NVIDIA driver); ${visibleText}`, fix: 'see "CUDA"', details };
  if (visible !== undefined) {
    return {
      id: 'gpus',
      title,
      status: 'warn',
      details,
      message: `none visible to LibTorch, though the driver is loaded: ${visibleText} hides them`,
      fix: 'unset CUDA_VISIBLE_DEVICES, or list the device indices or UUIDs to use (e.g. CUDA_VISIBLE_DEVICES=0,1)',
    };
  }
  return {
    id: 'gpus',
    title,
    status: 'fail',
    details,
    message: 'the NVIDIA driver is loaded but LibTorch sees no GPU',
    fix: 'check `nvidia-smi`, that /dev/nvidia* is readable by this user, and that the driver supports this CUDA (see "CUDA")',
  };
}

function ncclCheck(info: RawInfo | undefined, found: FoundLibTorch | undefined, cudaBuilt: boolean): DoctorCheck {
  const title = 'NCCL';
  if (!info) return { id: 'nccl', title, status: 'warn', message: 'not checked: the addon does not load', fix: 'see "native addon"' };
  const details = { built: info.ncclBuilt, libtorchHasNccl: found ? found.definitions.includes('USE_C10D_NCCL') : null };
  if (info.ncclBuilt)
    return { id: 'nccl', title, status: 'ok', message: 'built: data-parallel training on GPUs all-reduces over NCCL', details };
  if (!cudaBuilt)
    return { id: 'nccl', title, status: 'ok', message: 'not built (CPU LibTorch: Gloo carries distributed training)', details };
  return {
    id: 'nccl',
    title,
    status: 'warn',
    details,
    message: 'not built: distributed training on GPUs goes through Gloo, which is slower',
    fix: details.libtorchHasNccl
      ? 'the LibTorch found now has NCCL: rebuild (`npm rebuild adatt`); find-libtorch needs nccl.h (pip install nvidia-nccl-cu12, or NCCL_INCLUDE_DIR)'
      : "build against a LibTorch with c10d's NCCL backend (pip's CUDA torch has it) with LIBTORCH_USE_PYTORCH=1",
  };
}

function blasCheck(inputs: DoctorInputs, info: RawInfo | undefined): DoctorCheck {
  const title = 'BLAS';
  if (!info) return { id: 'blas', title, status: 'warn', message: 'not checked: the addon does not load', fix: 'see "native addon"' };
  const threads =
    `threads: LibTorch ${info.numThreads} intra-op / ${info.numInteropThreads} inter-op, ` +
    `BLAS ${info.blasThreads > 0 ? info.blasThreads : 'unknown'} (${info.blasThreading})`;
  const libraries = inputs.procMaps === undefined ? [] : mappedBlasLibraries(inputs.procMaps);
  const details = {
    libraries,
    kinds: libraries.map(blasKind),
    numThreads: info.numThreads,
    numInteropThreads: info.numInteropThreads,
    blasThreads: info.blasThreads,
    blasThreading: info.blasThreading,
  };
  const fast = libraries.find((file) => blasKind(file) !== 'reference BLAS');
  if (fast) return { id: 'blas', title, status: 'ok', message: `${blasKind(fast)} (${fast}); ${threads}`, details };
  if (libraries.length > 0) {
    return {
      id: 'blas',
      title,
      status: 'warn',
      details,
      message: `the reference BLAS (${libraries.join(', ')}), several times slower than OpenBLAS at every GEMM; ${threads}`,
      fix: INSTALL_OPENBLAS,
    };
  }
  // pip's torch links MKL statically; LibTorch says so in its parallel info.
  const mkl = /Math Kernel Library Version ([\d.]+)/.exec(info.parallelInfo)?.[1];
  if (mkl) return { id: 'blas', title, status: 'ok', message: `MKL ${mkl}, built into LibTorch; ${threads}`, details };
  return {
    id: 'blas',
    title,
    status: 'warn',
    details,
    message: `no BLAS library is mapped into this process${inputs.procMaps === undefined ? ' (/proc/self/maps unreadable)' : ''}; ${threads}`,
    fix: INSTALL_OPENBLAS,
  };
}

/** The driver version in /proc/driver/nvidia/version ("… Kernel Module  535.104.05  …"). */
export function parseNvidiaProcVersion(text: string): string | undefined {
  return /Kernel Module\b.*?\s(\d+\.\d+(?:\.\d+)?)\s/.exec(text)?.[1];
}

/** `nvidia-smi --query-gpu=driver_version,name --format=csv,noheader` lines. */
export function parseNvidiaSmi(text: string): NvidiaDriver | undefined {
  const rows = text
    .split('\n')
    .map((line) => line.split(',').map((cell) => cell.trim()))
    .filter((cells) => /^\d+\.\d+/.test(cells[0] ?? ''));
  if (rows.length === 0) return undefined;
  return { version: rows[0]![0]!, gpus: rows.map((cells) => cells.slice(1).join(', ')).filter(Boolean) };
}

function runQuietly(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 });
  } catch {
    return undefined;
  }
}

function probeNvidia(): NvidiaDriver | undefined {
  const fromSmi = parseNvidiaSmi(runQuietly('nvidia-smi', ['--query-gpu=driver_version,name', '--format=csv,noheader']) ?? '');
  if (fromSmi) return fromSmi;
  const version = parseNvidiaProcVersion(readText('/', '/proc/driver/nvidia/version') ?? '');
  return version ? { version, gpus: [] } : undefined;
}

function probeLdCache(): Map<string, string[]> {
  // ldconfig lives in /sbin, which a normal user's PATH may lack.
  for (const command of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    const text = runQuietly(command, ['-p']);
    if (text !== undefined) return parseLdconfigCache(text);
  }
  return new Map();
}

const PACKAGE_ROOT = path.join(__dirname, '..');

function probeLibTorch(env: NodeJS.ProcessEnv): FoundLibTorch | { error: string } {
  try {
    const { findLibTorch } = require(path.join(PACKAGE_ROOT, 'scripts', 'install', 'find-libtorch.js')) as {
      findLibTorch(env: NodeJS.ProcessEnv): FoundLibTorch;
    };
    return findLibTorch(env);
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** Loads a .node file by path whatever its name (require would read another extension as JavaScript). */
function dlopenAddon(file: string): RawAddon {
  const module = { exports: {} };
  process.dlopen(module, file);
  return module.exports as RawAddon;
}

export interface ProbeOptions {
  env?: NodeJS.ProcessEnv;
  /** Check this addon file (e.g. a prebuild) instead of the one adatt loads. */
  addonFile?: string;
}

/** Gathers the facts of this process: loads the addon (so /proc/self/maps shows its libraries), runs ldconfig and nvidia-smi. */
export function probeSystem(options: ProbeOptions = {}): DoctorInputs {
  const env = options.env ?? process.env;
  let addonPath = options.addonFile && path.resolve(options.addonFile);
  let load: DoctorInputs['load'];
  try {
    if (addonPath === undefined) {
      addonPath = (require('node-gyp-build') as { resolve(root: string): string }).resolve(PACKAGE_ROOT);
    }
  } catch {
    // no build and no prebuild: loadAddon below explains it
  }
  try {
    const addon = options.addonFile ? dlopenAddon(addonPath!) : loadAddon();
    load = { info: addon.info() };
  } catch (err) {
    load = { error: options.addonFile ? nativeLoadError(err) : (err as Error) };
  }
  return {
    env,
    root: '/',
    addonPath,
    load,
    libtorch: probeLibTorch(env),
    procMaps: readText('/', '/proc/self/maps'),
    ldCache: probeLdCache(),
    nvidia: probeNvidia(),
  };
}
