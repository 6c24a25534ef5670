/**
 * `adatt doctor` (lib/doctor.ts, lib/elf.ts, lib/cli/commands/doctor.ts): the ELF reader on ELF64
 * files written here, the loader-order library search on stand-in file-system trees, every check on
 * injected facts (find-libtorch's answer, info(), /proc/self/maps, the driver), and the command
 * itself, once on the built addon of this checkout.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RawInfo } from '../lib/addon';
import { nativeLoadError } from '../lib/addon';
import { main } from '../lib/cli';
import { formatReport } from '../lib/cli/commands/doctor';
import {
  compareVersions,
  cudaVersionOf,
  diagnose,
  mappedBlasLibraries,
  parseNvidiaProcVersion,
  parseNvidiaSmi,
  type DoctorCheck,
  type DoctorInputs,
  type DoctorReport,
  type FoundLibTorch,
} from '../lib/doctor';
import { DEFAULT_LIBRARY_DIRS, parseLdconfigCache, readElfDynamic, resolveDependencies, type SearchPaths } from '../lib/elf';
import { FileError, NativeLoadError } from '../lib/errors';
import { makeTempDir, REPO_ROOT } from './helpers/reference';

const X86_64 = 62;
const AARCH64 = 183;

interface ElfSpec {
  needed?: string[];
  runpath?: string;
  rpath?: string;
  soname?: string;
  machine?: number;
  /** Name the dynamic section only in the section headers (no program headers), as objcopy'd files may. */
  sectionsOnly?: boolean;
}

/**
 * A minimal valid ELF64 (little-endian) shared object: one PT_LOAD mapping the whole file at
 * address 0, PT_DYNAMIC, PT_GNU_STACK (non-executable), the dynamic section (DT_NEEDED…,
 * DT_SONAME, DT_RPATH, DT_RUNPATH, DT_STRTAB, DT_STRSZ, DT_NULL), its string table, and section
 * headers for .dynamic and .dynstr.
 */
function elfBytes(spec: ElfSpec): Buffer {
  const strtab: number[] = [0];
  const addString = (text: string): number => {
    const offset = strtab.length;
    strtab.push(...Buffer.from(text, 'utf8'), 0);
    return offset;
  };
  const dynamic: [number, number][] = [];
  for (const name of spec.needed ?? []) dynamic.push([1, addString(name)]);
  if (spec.soname) dynamic.push([14, addString(spec.soname)]);
  if (spec.rpath) dynamic.push([15, addString(spec.rpath)]);
  if (spec.runpath) dynamic.push([29, addString(spec.runpath)]);
  const programCount = spec.sectionsOnly ? 0 : 3;
  const dynamicOffset = 64 + programCount * 56;
  const dynamicSize = (dynamic.length + 3) * 16;
  const strtabOffset = dynamicOffset + dynamicSize;
  dynamic.push([5, strtabOffset], [10, strtab.length], [0, 0]);
  const sectionOffset = Math.ceil((strtabOffset + strtab.length) / 8) * 8;
  const size = sectionOffset + 3 * 64;
  const file = Buffer.alloc(size);
  file.writeUInt32BE(0x7f454c46, 0);
  file[4] = 2; // ELFCLASS64
  file[5] = 1; // little-endian
  file[6] = 1; // EV_CURRENT
  file.writeUInt16LE(3, 16); // ET_DYN
  file.writeUInt16LE(spec.machine ?? X86_64, 18);
  file.writeUInt32LE(1, 20);
  file.writeBigUInt64LE(BigInt(programCount ? 64 : 0), 32);
  file.writeBigUInt64LE(BigInt(sectionOffset), 40);
  file.writeUInt16LE(64, 52);
  file.writeUInt16LE(56, 54);
  file.writeUInt16LE(programCount, 56);
  file.writeUInt16LE(64, 58);
  file.writeUInt16LE(3, 60);
  const program = (index: number, type: number, flags: number, offset: number, filesz: number, align: number): void => {
    const at = 64 + index * 56;
    file.writeUInt32LE(type, at);
    file.writeUInt32LE(flags, at + 4);
    file.writeBigUInt64LE(BigInt(offset), at + 8);
    file.writeBigUInt64LE(BigInt(offset), at + 16); // vaddr = file offset
    file.writeBigUInt64LE(BigInt(offset), at + 24);
    file.writeBigUInt64LE(BigInt(filesz), at + 32);
    file.writeBigUInt64LE(BigInt(filesz), at + 40);
    file.writeBigUInt64LE(BigInt(align), at + 48);
  };
  if (programCount) {
    program(0, 1, 6, 0, size, 0x1000); // PT_LOAD, RW: the loader relocates the dynamic section in place
    program(1, 2, 6, dynamicOffset, dynamicSize, 8); // PT_DYNAMIC, RW
    program(2, 0x6474e551, 6, 0, 0, 16); // PT_GNU_STACK, RW
  }
  dynamic.forEach(([tag, value], i) => {
    file.writeBigInt64LE(BigInt(tag), dynamicOffset + i * 16);
    file.writeBigUInt64LE(BigInt(value), dynamicOffset + i * 16 + 8);
  });
  Buffer.from(strtab).copy(file, strtabOffset);
  const section = (index: number, type: number, offset: number, sectionSize: number, link: number, entsize: number): void => {
    const at = sectionOffset + index * 64;
    file.writeUInt32LE(type, at + 4);
    file.writeBigUInt64LE(BigInt(offset), at + 16);
    file.writeBigUInt64LE(BigInt(offset), at + 24);
    file.writeBigUInt64LE(BigInt(sectionSize), at + 32);
    file.writeUInt32LE(link, at + 40);
    file.writeBigUInt64LE(BigInt(entsize), at + 56);
  };
  section(1, 6, dynamicOffset, dynamicSize, 2, 16); // .dynamic -> .dynstr
  section(2, 3, strtabOffset, strtab.length, 0, 0); // .dynstr
  return file;
}

function write(file: string, content: string | Buffer = ''): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

function writeElf(file: string, spec: ElfSpec = {}): string {
  return write(file, elfBytes(spec));
}

/** A search over the stand-in tree `root` only: no ld.so cache, no LD_LIBRARY_PATH. */
function searchIn(root: string, extra: Partial<SearchPaths> = {}): SearchPaths {
  return { root, libraryPath: [], ldCache: new Map(), defaultDirs: DEFAULT_LIBRARY_DIRS, ...extra };
}

describe('the ELF reader', () => {
  it('reads DT_NEEDED, DT_SONAME, DT_RPATH and DT_RUNPATH through the program headers', () => {
    const file = writeElf(path.join(makeTempDir('elf'), 'libx.so'), {
      needed: ['libtorch.so', 'libc.so.6'],
      soname: 'libx.so.1',
      rpath: '/opt/a:/opt/b',
      runpath: '$ORIGIN/../lib',
    });
    expect(readElfDynamic(file)).toEqual({
      littleEndian: true,
      machine: X86_64,
      soname: 'libx.so.1',
      needed: ['libtorch.so', 'libc.so.6'],
      rpath: ['/opt/a', '/opt/b'],
      runpath: ['$ORIGIN/../lib'],
    });
  });

  it('falls back to the section headers when there is no PT_DYNAMIC', () => {
    const file = writeElf(path.join(makeTempDir('elf'), 'liby.so'), {
      needed: ['libz.so.1'],
      runpath: '/usr/local/lib',
      sectionsOnly: true,
    });
    expect(readElfDynamic(file)).toMatchObject({ needed: ['libz.so.1'], runpath: ['/usr/local/lib'], rpath: [] });
  });

  it.skipIf(!fs.existsSync('/usr/bin/readelf'))('agrees with readelf -d on a real library of this machine', () => {
    const library = fs.realpathSync('/usr/lib/x86_64-linux-gnu/libtorch_cpu.so');
    const readelf = execFileSync('readelf', ['-dW', library], { encoding: 'utf8' });
    const entries = (type: string): string[] => [...readelf.matchAll(new RegExp(`\\(${type}\\).*\\[(.*)\\]`, 'g'))].map((m) => m[1]!);
    const elf = readElfDynamic(library);
    expect(elf.needed).toEqual(entries('NEEDED'));
    expect(elf.needed.length).toBeGreaterThan(5);
    expect(elf.soname).toBe(entries('SONAME')[0]);
    expect(elf.runpath).toEqual(entries('RUNPATH').flatMap((entry) => entry.split(':')));
  });

  it('refuses what is not a readable ELF64 object with a FileError naming the file', () => {
    const dir = makeTempDir('elf');
    const text = write(path.join(dir, 'libtext.so'), 'INPUT(-lfoo)\n');
    expect(() => readElfDynamic(text)).toThrow(FileError);
    expect(() => readElfDynamic(text)).toThrow(`${text}: not an ELF file`);
    const elf32 = elfBytes({});
    elf32[4] = 1;
    expect(() => readElfDynamic(write(path.join(dir, 'lib32.so'), elf32))).toThrow(/not a 64-bit ELF file/);
    const truncated = write(path.join(dir, 'libcut.so'), elfBytes({ needed: ['libz.so.1'] }).subarray(0, 100));
    expect(() => readElfDynamic(truncated)).toThrow(/program headers lies outside the file/);
    expect(() => readElfDynamic(path.join(dir, 'absent.so'))).toThrow(/cannot be read/);
  });
});

describe('resolving DT_NEEDED libraries as the loader does', () => {
  it('expands $ORIGIN in DT_RUNPATH, follows dependencies, and names each missing library with who needs it', () => {
    const root = makeTempDir('doctor-root');
    writeElf(path.join(root, 'app/build/Release/adatt.node'), {
      needed: ['libtorch.so', 'libc.so.6'],
      runpath: '$ORIGIN/../../libtorch/lib',
    });
    writeElf(path.join(root, 'app/libtorch/lib/libtorch.so'), { needed: ['libc10.so', 'libgloo.so.0'], runpath: '$ORIGIN' });
    writeElf(path.join(root, 'app/libtorch/lib/libc10.so'), { needed: ['libc.so.6'] });
    writeElf(path.join(root, 'usr/lib/x86_64-linux-gnu/libc.so.6'), { soname: 'libc.so.6' });
    const result = resolveDependencies('/app/build/Release/adatt.node', searchIn(root));
    expect(result.libraries.map((library) => [library.name, library.path])).toEqual([
      ['', '/app/build/Release/adatt.node'],
      ['libtorch.so', '/app/libtorch/lib/libtorch.so'],
      ['libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6'],
      ['libc10.so', '/app/libtorch/lib/libc10.so'],
    ]);
    expect(result.missing).toEqual([
      {
        name: 'libgloo.so.0',
        neededBy: '/app/libtorch/lib/libtorch.so',
        skipped: [],
        searched: ['/app/libtorch/lib', ...DEFAULT_LIBRARY_DIRS],
      },
    ]);
  });

  it('passes DT_RPATH on to what a library loads, but not DT_RUNPATH, and an object with DT_RUNPATH ignores DT_RPATH', () => {
    const root = makeTempDir('doctor-root');
    writeElf(path.join(root, 'opt/lib/libdep.so'));
    writeElf(path.join(root, 'opt/lib/libleaf.so'));
    writeElf(path.join(root, 'srv/libmid.so'), { needed: ['libleaf.so'] });
    writeElf(path.join(root, 'srv/librun.so'), { needed: ['libleaf.so'] });
    writeElf(path.join(root, 'a.node'), { needed: ['libmid.so', 'libdep.so'], rpath: '/opt/lib:/srv' });
    expect(resolveDependencies('/a.node', searchIn(root)).missing).toEqual([]);
    // RUNPATH of the top object: its own direct needs only.
    writeElf(path.join(root, 'b.node'), { needed: ['libmid.so'], runpath: '/opt/lib:/srv' });
    expect(resolveDependencies('/b.node', searchIn(root)).missing.map((m) => [m.name, m.neededBy])).toEqual([
      ['libleaf.so', '/srv/libmid.so'],
    ]);
    writeElf(path.join(root, 'c.node'), { needed: ['libdep.so'], rpath: '/opt/lib', runpath: '/nowhere' });
    expect(resolveDependencies('/c.node', searchIn(root)).missing.map((m) => m.name)).toEqual(['libdep.so']);
  });

  it('searches LD_LIBRARY_PATH and the ld.so cache, and skips a file built for another machine', () => {
    const root = makeTempDir('doctor-root');
    writeElf(path.join(root, 'a.node'), { needed: ['libfrom-env.so', 'libfrom-cache.so.2', 'libarm.so'] });
    writeElf(path.join(root, 'env/libfrom-env.so'));
    writeElf(path.join(root, 'cached/libfrom-cache.so.2.1'));
    writeElf(path.join(root, 'usr/lib/libarm.so'), { machine: AARCH64 });
    const ldCache = parseLdconfigCache(
      [
        "2 libs found in cache `/etc/ld.so.cache'",
        '\tlibfrom-cache.so.2 (libc6,x86-64) => /cached/libfrom-cache.so.2.1',
        '\tlibother.so (libc6,x86-64, OS ABI: Linux 3.2.0) => /usr/lib/libother.so',
      ].join('\n'),
    );
    expect([...ldCache]).toEqual([
      ['libfrom-cache.so.2', ['/cached/libfrom-cache.so.2.1']],
      ['libother.so', ['/usr/lib/libother.so']],
    ]);
    const result = resolveDependencies('/a.node', searchIn(root, { libraryPath: ['/env'], ldCache }));
    expect(Object.fromEntries(result.libraries.slice(1).map((l) => [l.name, l.path]))).toEqual({
      'libfrom-env.so': '/env/libfrom-env.so',
      'libfrom-cache.so.2': '/cached/libfrom-cache.so.2.1',
    });
    expect(result.missing).toMatchObject([{ name: 'libarm.so', skipped: ['/usr/lib/libarm.so (built for AArch64)'] }]);
  });
});

const LOADED_INFO: RawInfo = {
  libtorchVersion: '2.5.1',
  runtimeLibtorchVersion: '2.5.1',
  libtorchPath: '/site/torch/lib/libtorch_cpu.so',
  torchVersionMajor: 2,
  torchVersionMinor: 5,
  parallelInfo: 'ATen/Parallel:\n\tat::get_num_threads() : 4\n',
  cudaBuilt: true,
  cudaAvailable: true,
  ncclBuilt: true,
  cudaDeviceCount: 2,
  numThreads: 4,
  numInteropThreads: 4,
  blasThreads: 4,
  blasThreading: 'openblas-pthreads',
  blasMaxThreads: 64,
  inferenceThreads: 2,
};
const FOUND: FoundLibTorch = {
  source: 'LIBTORCH_USE_PYTORCH=1 (python3: /site/torch)',
  root: '/site/torch',
  libdir: '/site/torch/lib',
  version: '2.5.1',
  cuda: true,
  definitions: ['USE_C10D_GLOO', 'USE_C10D_NCCL', 'USE_DISTRIBUTED'],
};
const OPENBLAS_MAPS = [
  '7f0000000000-7f0000001000 r--p 00000000 08:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6',
  '7f0000100000-7f0000200000 r-xp 00010000 08:01 5678   /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so',
  '7f0000300000-7f0000301000 rw-p 00000000 00:00 0      [heap]',
].join('\n');

/** A loaded CUDA pip torch on a machine with a driver: every check ok. Tests change one fact each. */
function healthyInputs(overrides: Partial<DoctorInputs> = {}): DoctorInputs {
  const root = makeTempDir('doctor-root');
  writeElf(path.join(root, 'app/adatt.node'), { needed: ['libtorch.so'], runpath: '/site/torch/lib' });
  writeElf(path.join(root, 'site/torch/lib/libtorch.so'), { needed: ['libtorch_cuda.so'], runpath: '$ORIGIN' });
  writeElf(path.join(root, 'site/torch/lib/libtorch_cuda.so'));
  write(path.join(root, 'site/torch/version.py'), "__version__ = '2.5.1+cu124'\ncuda: Optional[str] = '12.4'\n");
  return {
    env: {},
    root,
    addonPath: '/app/adatt.node',
    load: { info: LOADED_INFO },
    libtorch: FOUND,
    procMaps: OPENBLAS_MAPS,
    ldCache: new Map(),
    nvidia: { version: '550.54.14', gpus: ['NVIDIA H100', 'NVIDIA H100'] },
    ...overrides,
  };
}

function check(report: DoctorReport, id: string): DoctorCheck {
  const found = report.checks.find((c) => c.id === id);
  if (!found) throw new Error(`no check ${id} in ${report.checks.map((c) => c.id).join(', ')}`);
  return found;
}

describe('diagnose', () => {
  it('passes a healthy CUDA install and says what it found', () => {
    const report = diagnose(healthyInputs());
    expect(report.checks.map((c) => [c.id, c.status])).toEqual([
      ['addon', 'ok'],
      ['libtorch', 'ok'],
      ['libtorch-version', 'ok'],
      ['shared-libraries', 'ok'],
      ['cuda', 'ok'],
      ['gpus', 'ok'],
      ['nccl', 'ok'],
      ['blas', 'ok'],
    ]);
    expect(report).toMatchObject({ ok: true, counts: { ok: 8, warn: 0, fail: 0 } });
    expect(check(report, 'libtorch').message).toBe(
      '2.5.1 (CUDA) in /site/torch/lib, found by rule 2, LIBTORCH_USE_PYTORCH=1 (python3: /site/torch)',
    );
    expect(check(report, 'cuda').message).toBe(
      'CUDA 12.4 build of LibTorch; NVIDIA driver 550.54.14 (NVIDIA H100, NVIDIA H100) (CUDA 12.4 needs 525.60.13)',
    );
    expect(check(report, 'shared-libraries').details).toMatchObject({
      runpath: ['/site/torch/lib'],
      rpath: [],
      needed: ['libtorch.so'],
      resolved: { 'libtorch.so': '/site/torch/lib/libtorch.so', 'libtorch_cuda.so': '/site/torch/lib/libtorch_cuda.so' },
      missing: [],
    });
    expect(check(report, 'blas').message).toBe(
      'OpenBLAS (/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so); ' +
        'threads: LibTorch 4 intra-op / 4 inter-op, BLAS 4 (openblas-pthreads)',
    );
  });

  it('still reports when the addon cannot load: why, every missing library by name, and the fix for each', () => {
    // A pip torch stand-in found by the real find-libtorch (rule 1), whose CUDA runtime and Gloo are missing.
    const root = makeTempDir('doctor-root');
    const torch = path.join(root, 'site', 'torch');
    write(path.join(torch, 'include/torch/csrc/api/include/torch/torch.h'));
    write(
      path.join(torch, 'include/torch/csrc/api/include/torch/version.h'),
      '#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 5\n#define TORCH_VERSION_PATCH 1\n',
    );
    write(path.join(torch, 'build-version'), '2.5.1+cu121\n');
    writeElf(path.join(torch, 'lib/libtorch.so'), { needed: ['libtorch_cuda.so', 'libc10.so', 'libgloo.so.0'], runpath: '$ORIGIN' });
    writeElf(path.join(torch, 'lib/libtorch_cuda.so'), {
      needed: ['libcudart.so.12', 'libcuda.so.1', 'libsleef.so.3'],
      runpath: '$ORIGIN',
    });
    writeElf(path.join(torch, 'lib/libc10.so'));
    writeElf(path.join(root, 'app/build/Release/adatt.node'), {
      needed: ['libtorch.so', 'libc10.so', 'libopenblas.so.0'],
      runpath: '/site/torch/lib',
    });
    const { findLibTorch } = createRequire(__filename)(path.join(REPO_ROOT, 'scripts', 'install', 'find-libtorch.js')) as {
      findLibTorch(env: NodeJS.ProcessEnv): FoundLibTorch;
    };
    const real = findLibTorch({ LIBTORCH: torch });
    const inRoot = (file: string): string => `/${path.relative(root, file)}`;
    const found = { ...real, root: inRoot(real.root), libdir: inRoot(real.libdir) };
    const loadError = nativeLoadError(
      new Error('/app/build/Release/adatt.node: libcudart.so.12: cannot open shared object file: No such file or directory'),
    );

    const report = diagnose({
      env: { LIBTORCH: torch },
      root,
      addonPath: '/app/build/Release/adatt.node',
      load: { error: loadError },
      libtorch: found,
      ldCache: new Map(),
    });
    expect(report.ok).toBe(false);
    const addon = check(report, 'addon');
    expect(addon).toMatchObject({ status: 'fail', fix: 'make the missing libraries below findable (each check says how)' });
    expect(addon.message).toBe(
      '/app/build/Release/adatt.node does not load: /app/build/Release/adatt.node: libcudart.so.12: cannot open shared object file: No such file or directory',
    );
    expect(addon.details!.error).toContain('the native addon could not be loaded');
    expect(check(report, 'libtorch')).toMatchObject({
      status: 'ok',
      details: { rule: `rule 1, LIBTORCH=${torch}`, version: '2.5.1', cuda: true },
    });
    expect(check(report, 'shared-libraries')).toMatchObject({
      status: 'fail',
      details: { missing: ['libopenblas.so.0', 'libgloo.so.0', 'libcudart.so.12', 'libcuda.so.1', 'libsleef.so.3'] },
    });

    const missing = report.checks.filter((c) => c.id === 'missing-library');
    expect(missing.map((c) => [c.title, c.status, c.details!.neededBy])).toEqual([
      ['libopenblas.so.0', 'fail', '/app/build/Release/adatt.node'],
      ['libgloo.so.0', 'fail', '/site/torch/lib/libtorch.so'],
      ['libcudart.so.12', 'fail', '/site/torch/lib/libtorch_cuda.so'],
      ['libcuda.so.1', 'fail', '/site/torch/lib/libtorch_cuda.so'],
      ['libsleef.so.3', 'fail', '/site/torch/lib/libtorch_cuda.so'],
    ]);
    const fixOf = (name: string): string => missing.find((c) => c.title === name)!.fix!;
    expect(fixOf('libopenblas.so.0')).toContain('apt-get install libopenblas0-pthread');
    expect(fixOf('libgloo.so.0')).toBe('`apt-get install libgloo-dev`');
    expect(fixOf('libcudart.so.12')).toMatch(/runtime of CUDA 12\.1 this LibTorch was built for: `pip install torch`/);
    expect(fixOf('libcuda.so.1')).toMatch(/NVIDIA driver provides libcuda\.so\.1/);
    expect(fixOf('libsleef.so.3')).toMatch(/dependency of LibTorch itself: reinstall it/);
    expect(missing[0]!.message).toContain('is in none of /site/torch/lib, /lib, /usr/lib, /lib/x86_64-linux-gnu');

    // What needs info() is marked not checked; CUDA is told from the layout (libtorch_cuda.so, build-version).
    for (const id of ['libtorch-version', 'nccl', 'blas'])
      expect(check(report, id)).toMatchObject({ status: 'warn', message: 'not checked: the addon does not load' });
    expect(check(report, 'cuda')).toMatchObject({ status: 'warn', details: { built: true, cudaVersion: '12.1', driver: null } });
  });

  it('names libtorch_cpu.so missing after LibTorch was removed, with the install and rebuild fixes', () => {
    const root = makeTempDir('doctor-root');
    writeElf(path.join(root, 'pkg/adatt.node'), {
      needed: ['libtorch_cpu.so.1.13', 'libc10.so.1.13'],
      runpath: '/usr/lib/x86_64-linux-gnu',
    });
    const report = diagnose({
      env: {},
      root,
      addonPath: '/pkg/adatt.node',
      ldCache: new Map(),
      load: { error: nativeLoadError(new Error('libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory')) },
      libtorch: { error: "No LibTorch found. Install Debian's LibTorch (apt-get install libtorch-dev libgloo-dev)…" },
    });
    expect(check(report, 'addon').message).toBe(
      '/pkg/adatt.node does not load: libtorch_cpu.so.1.13: cannot open shared object file: No such file or directory',
    );
    expect(check(report, 'libtorch')).toMatchObject({ status: 'fail', message: expect.stringContaining('No LibTorch found') });
    const missing = report.checks.filter((c) => c.id === 'missing-library');
    expect(missing.map((c) => c.title)).toEqual(['libtorch_cpu.so.1.13', 'libc10.so.1.13']);
    expect(missing[0]!.fix).toMatch(
      /apt-get install libtorch-dev libgloo-dev.*LIBTORCH=\/path\/to\/libtorch.*LD_LIBRARY_PATH.*npm rebuild adatt/,
    );
  });

  it('reports a missing addon file, and an addon that is not an ELF object', () => {
    const noBuild = diagnose({
      env: {},
      root: makeTempDir('doctor-root'),
      ldCache: new Map(),
      libtorch: FOUND,
      load: { error: nativeLoadError(new Error('No native build was found for platform=linux arch=x64')) },
    });
    expect(check(noBuild, 'addon')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('no compiled native addon found'),
      fix: expect.stringMatching(/^build the addon: `npm rebuild adatt`/),
    });
    expect(check(noBuild, 'shared-libraries')).toMatchObject({ status: 'warn', message: 'not checked: no addon file found' });

    const inputs = healthyInputs();
    write(path.join(inputs.root, 'app/adatt.node'), 'not a shared object');
    expect(check(diagnose(inputs), 'shared-libraries')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('not an ELF file'),
    });
  });

  it('fails a loaded LibTorch of another version, and warns when a rebuild would switch LibTorch', () => {
    const mismatch = diagnose(healthyInputs({ load: { info: { ...LOADED_INFO, runtimeLibtorchVersion: '2.6.0' } } }));
    expect(check(mismatch, 'libtorch-version')).toMatchObject({
      status: 'fail',
      message: 'built against 2.5.1, loads 2.6.0 (/site/torch/lib/libtorch_cpu.so)',
    });
    expect(mismatch.ok).toBe(false);
    const refused = new NativeLoadError("adatt's native addon was built against LibTorch 1.13.0 but LibTorch 2.6.0 is loaded (…)");
    expect(check(diagnose(healthyInputs({ load: { error: refused } })), 'libtorch-version')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('npm rebuild adatt'),
    });

    const elsewhere = diagnose(
      healthyInputs({ libtorch: { ...FOUND, source: 'system', libdir: '/usr/lib/x86_64-linux-gnu', version: '1.13.0' } }),
    );
    expect(check(elsewhere, 'libtorch')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('the addon loads the LibTorch in /site/torch/lib, so a rebuild would switch LibTorch'),
    });
    expect(check(elsewhere, 'libtorch-version')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('a rebuild now would use LibTorch 1.13.0'),
    });
    expect(elsewhere.ok).toBe(true);

    const prebuildOnly = diagnose(healthyInputs({ libtorch: { error: 'No LibTorch found.' } }));
    expect(check(prebuildOnly, 'libtorch')).toMatchObject({ status: 'warn', fix: expect.stringMatching(/^only needed to rebuild/) });
  });

  it('compares the CUDA build with the driver', () => {
    const old = diagnose(healthyInputs({ nvidia: { version: '470.82.01', gpus: ['Tesla T4'] } }));
    expect(check(old, 'cuda')).toMatchObject({
      status: 'fail',
      message: 'CUDA 12.4 build of LibTorch, but NVIDIA driver 470.82.01 (Tesla T4) is older than CUDA 12.4 needs (525.60.13)',
      fix: 'upgrade the NVIDIA driver to 525.60.13 or newer, or use a torch built for an older CUDA',
    });
    expect(old.ok).toBe(false);
    // Without a usable GPU info().cudaBuilt (at::hasCUDA()) is false: libtorch_cuda.so in the link graph tells the build.
    const noDriver = diagnose(
      healthyInputs({ nvidia: undefined, load: { info: { ...LOADED_INFO, cudaBuilt: false, cudaAvailable: false, cudaDeviceCount: 0 } } }),
    );
    expect(check(noDriver, 'cuda')).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/^CUDA 12\.4 build of LibTorch, but no NVIDIA driver is loaded/),
      fix: expect.stringContaining('(525.60.13 or newer)'),
    });
    expect(check(noDriver, 'gpus')).toMatchObject({
      status: 'warn',
      message: 'none visible (no NVIDIA driver); CUDA_VISIBLE_DEVICES unset',
    });
    const cpuInputs = healthyInputs({
      libtorch: { ...FOUND, cuda: false },
      load: { info: { ...LOADED_INFO, cudaBuilt: false, ncclBuilt: false } },
    });
    writeElf(path.join(cpuInputs.root, 'site/torch/lib/libtorch.so'));
    const cpuWithGpu = diagnose(cpuInputs);
    expect(check(cpuWithGpu, 'cuda')).toMatchObject({
      status: 'warn',
      message: 'NVIDIA driver 550.54.14 (NVIDIA H100, NVIDIA H100) is present, but this LibTorch is CPU-only',
    });
    expect(check(cpuWithGpu, 'nccl')).toMatchObject({ status: 'ok', message: expect.stringContaining('not built (CPU LibTorch') });
  });

  it('tells which GPUs LibTorch sees and when CUDA_VISIBLE_DEVICES hides them', () => {
    expect(check(diagnose(healthyInputs({ env: { CUDA_VISIBLE_DEVICES: '0,1' } })), 'gpus').message).toBe(
      '2 visible to LibTorch; CUDA_VISIBLE_DEVICES="0,1"; the driver lists NVIDIA H100, NVIDIA H100',
    );
    const none = { ...LOADED_INFO, cudaAvailable: false, cudaDeviceCount: 0 };
    expect(check(diagnose(healthyInputs({ env: { CUDA_VISIBLE_DEVICES: '' }, load: { info: none } })), 'gpus')).toMatchObject({
      status: 'warn',
      message: 'none visible to LibTorch, though the driver is loaded: CUDA_VISIBLE_DEVICES="" hides them',
    });
    expect(check(diagnose(healthyInputs({ load: { info: none } })), 'gpus')).toMatchObject({
      status: 'fail',
      fix: expect.stringContaining('/dev/nvidia*'),
    });
  });

  it('warns about a CUDA build without NCCL', () => {
    const report = diagnose(healthyInputs({ load: { info: { ...LOADED_INFO, ncclBuilt: false } } }));
    expect(check(report, 'nccl')).toMatchObject({ status: 'warn', fix: expect.stringContaining('rebuild (`npm rebuild adatt`)') });
  });

  it('reads the BLAS from /proc/self/maps: OpenBLAS ok, the reference BLAS a warning, MKL built into LibTorch ok', () => {
    const reference = '7f00-7f01 r-xp 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/blas/libblas.so.3\n';
    expect(mappedBlasLibraries(`${OPENBLAS_MAPS}\n${reference}`)).toEqual([
      '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so',
      '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3',
    ]);
    const slow = diagnose(healthyInputs({ procMaps: reference }));
    expect(check(slow, 'blas')).toMatchObject({ status: 'warn', fix: expect.stringContaining('apt-get install libopenblas0-pthread') });
    expect(check(slow, 'blas').message).toMatch(/^the reference BLAS \(\/usr\/lib\/x86_64-linux-gnu\/blas\/libblas\.so\.3\)/);
    const mkl = {
      ...LOADED_INFO,
      parallelInfo: 'Intel(R) Math Kernel Library Version 2020.0.4 Product Build 20200917\n',
      blasThreads: 0,
      blasThreading: 'unknown',
    };
    expect(check(diagnose(healthyInputs({ procMaps: '', load: { info: mkl } })), 'blas')).toMatchObject({
      status: 'ok',
      message: 'MKL 2020.0.4, built into LibTorch; threads: LibTorch 4 intra-op / 4 inter-op, BLAS unknown (unknown)',
    });
    expect(check(diagnose(healthyInputs({ procMaps: '' })), 'blas')).toMatchObject({
      status: 'warn',
      message: expect.stringContaining('no BLAS library is mapped'),
    });
    const atlas = '7f00-7f01 r-xp 00000000 08:01 42 /usr/lib/x86_64-linux-gnu/atlas/libblas.so.3\n';
    expect(check(diagnose(healthyInputs({ procMaps: atlas })), 'blas')).toMatchObject({ status: 'ok', details: { kinds: ['ATLAS'] } });
  });
});

describe("parsing the system's answers", () => {
  it('reads the driver from /proc/driver/nvidia/version and nvidia-smi, and CUDA versions from LibTorch files', () => {
    expect(
      parseNvidiaProcVersion('NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC version: …'),
    ).toBe('535.104.05');
    expect(
      parseNvidiaProcVersion(
        'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.86.15  Release Build  (dvs-builder@U16-I3-B03-4-3)',
      ),
    ).toBe('570.86.15');
    expect(parseNvidiaSmi('550.54.14, NVIDIA H100 80GB HBM3\n550.54.14, NVIDIA H100 80GB HBM3\n')).toEqual({
      version: '550.54.14',
      gpus: ['NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3'],
    });
    expect(parseNvidiaSmi("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")).toBeUndefined();
    expect(compareVersions('525.60.13', '535.104.05')).toBe(-1);
    expect(compareVersions('580.65.06', '580.65.6')).toBe(0);
    const root = makeTempDir('doctor-root');
    write(path.join(root, 'libtorch/build-version'), '2.7.0+cu118\n');
    expect(cudaVersionOf(root, ['/missing', '/libtorch'], [])).toBe('11.8');
    expect(cudaVersionOf(root, ['/missing'], ['libc.so.6', 'libcudart.so.13'])).toBe('13');
  });
});

describe('adatt doctor', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function doctor(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      stdout += String(chunk);
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      stderr += String(chunk);
      return true;
    });
    const code = await main(['doctor', ...args]);
    vi.restoreAllMocks();
    return { code, stdout, stderr };
  }

  it("passes on this checkout's built addon: LibTorch and the BLAS ok, JSON report on stdout", async () => {
    expect(fs.existsSync(path.join(REPO_ROOT, 'build', 'Release', 'adatt.node'))).toBe(true);
    const { code, stdout } = await doctor(['--json']);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const event = JSON.parse(lines[0]!) as {
      event: string;
      ok: boolean;
      counts: Record<string, number>;
      checks: DoctorCheck[];
      adatt: string;
    };
    expect(event).toMatchObject({ event: 'doctor', ok: true, adatt: expect.any(String), counts: { fail: 0 } });
    expect(code).toBe(0);
    const byId = new Map(event.checks.map((c) => [c.id, c]));
    expect(byId.get('addon')).toMatchObject({ status: 'ok', details: { path: path.join(REPO_ROOT, 'build', 'Release', 'adatt.node') } });
    expect(byId.get('libtorch')?.status).toBe('ok');
    expect(byId.get('libtorch-version')?.status).toBe('ok');
    expect(byId.get('shared-libraries')).toMatchObject({ status: 'ok', details: { missing: [] } });
    expect(byId.get('blas')).toMatchObject({ status: 'ok', message: expect.stringMatching(/^(OpenBLAS|MKL)/) });
    for (const c of event.checks) expect(['ok', 'warn', 'fail']).toContain(c.status);
  });

  it('prints one line per check with the counts', async () => {
    const { code, stdout } = await doctor([]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^adatt \S+, Node v\d+/);
    expect(stdout).toMatch(/^ok {4}LibTorch {10}\d+\.\d+/m);
    expect(stdout).toMatch(/^ok {4}BLAS {14}/m);
    expect(stdout).toMatch(/\d+ ok, \d+ warnings?, 0 failed\n$/);
  });

  it('exits 1 for an addon whose libraries are missing, naming them', async () => {
    const addon = writeElf(path.join(makeTempDir('doctor-addon'), 'broken.node'), { needed: ['libadatt-doctor-absent.so.7'] });
    const { code, stdout } = await doctor(['--addon', addon, '--json']);
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as DoctorReport;
    expect(report.checks.find((c) => c.id === 'addon')).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('libadatt-doctor-absent.so.7'),
    });
    expect(report.checks.find((c) => c.id === 'missing-library')).toMatchObject({
      title: 'libadatt-doctor-absent.so.7',
      details: { neededBy: addon },
      fix: 'install the package that provides libadatt-doctor-absent.so.7 (`apt-file search libadatt-doctor-absent.so.7` names it), or add its folder to LD_LIBRARY_PATH',
    });
  });

  it('refuses bad command lines with exit code 2', async () => {
    const missing = await doctor(['--addon', '/nonexistent/adatt.node']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--addon /nonexistent/adatt.node: no such file');
    expect((await doctor(['--addon', REPO_ROOT])).stderr).toContain('not a file');
    expect((await doctor(['now'])).stderr).toContain("unexpected argument 'now'");
    expect((await doctor(['--jsn'])).stderr).toContain('did you mean --json?');
  });

  it('formats fixes under failing checks', () => {
    const plain = { bold: String, dim: String, green: String, yellow: String, red: String };
    const text = formatReport(
      {
        ok: false,
        counts: { ok: 1, warn: 0, fail: 1 },
        checks: [
          { id: 'blas', title: 'BLAS', status: 'ok', message: 'OpenBLAS' },
          {
            id: 'missing-library',
            title: 'libgloo.so.0',
            status: 'fail',
            message: 'libgloo.so.0 is missing',
            fix: '`apt-get install libgloo-dev`',
          },
        ],
      },
      plain,
    );
    expect(text).toBe(
      [
        'ok    BLAS          OpenBLAS',
        'FAIL  libgloo.so.0  libgloo.so.0 is missing',
        '                    fix: `apt-get install libgloo-dev`',
        '',
        '1 ok, 0 warnings, 1 failed',
      ].join('\n'),
    );
  });
});
