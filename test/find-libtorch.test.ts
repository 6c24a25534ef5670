/** scripts/install/find-libtorch.js on LibTorch layouts this machine does not have (built here as folders of stand-ins). */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT } from './helpers/reference';

interface Found {
  source: string;
  version: string;
  cuda: boolean;
  cxx11Abi: number;
  libs: string[];
  definitions: string[];
  includeDirs: string[];
  extraIncludeDirs: string[];
}
const { findLibTorch } = createRequire(__filename)(path.join(REPO_ROOT, 'scripts', 'install', 'find-libtorch.js')) as {
  findLibTorch(env: NodeJS.ProcessEnv): Found;
};

function write(file: string, text = ''): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
}

/** A pip-installed CUDA torch: site-packages/torch (a LibTorch distribution) beside site-packages/nvidia/*. */
function pipTorch(options: { nccl: boolean }): string {
  const sitePackages = makeTempDir('find-libtorch');
  const torch = path.join(sitePackages, 'torch');
  write(path.join(torch, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'torch.h'));
  write(
    path.join(torch, 'include', 'torch', 'csrc', 'api', 'include', 'torch', 'version.h'),
    '#define TORCH_VERSION_MAJOR 2\n#define TORCH_VERSION_MINOR 11\n#define TORCH_VERSION_PATCH 0\n',
  );
  for (const lib of ['torch', 'torch_cpu', 'c10', 'torch_cuda', 'c10_cuda']) write(path.join(torch, 'lib', `lib${lib}.so`));
  write(path.join(torch, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'), 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1")\n');
  write(
    path.join(torch, 'share', 'cmake', 'Caffe2', 'Caffe2Targets.cmake'),
    [
      'set_target_properties(torch_cpu PROPERTIES INTERFACE_COMPILE_DEFINITIONS "USE_DISTRIBUTED;USE_C10D_GLOO")',
      'set_target_properties(torch_cuda PROPERTIES INTERFACE_COMPILE_DEFINITIONS "USE_C10D_NCCL")',
    ].join('\n'),
  );
  if (options.nccl) write(path.join(sitePackages, 'nvidia', 'nccl', 'include', 'nccl.h'));
  write(path.join(sitePackages, 'nvidia', 'cuda_runtime', 'include', 'cuda_runtime_api.h'));
  write(path.join(sitePackages, 'nvidia', 'cusparse', 'include', 'cusparse.h'));
  return torch;
}

describe('scripts/install/find-libtorch.js', () => {
  it('reads a CUDA LibTorch with NCCL: version, libraries, definitions, and the nvidia-* header folders', () => {
    const torch = pipTorch({ nccl: true });
    const found = findLibTorch({ LIBTORCH: torch });
    expect(found).toMatchObject({ version: '2.11.0', cuda: true, cxx11Abi: 1 });
    expect(found.libs).toEqual(['torch', 'torch_cpu', 'c10', 'torch_cuda', 'c10_cuda']);
    expect(found.definitions).toEqual(['USE_C10D_GLOO', 'USE_C10D_NCCL', 'USE_DISTRIBUTED']);
    const nvidia = path.join(torch, '..', 'nvidia');
    const nvidiaHeaders = ['cuda_runtime', 'cusparse', 'nccl'].map((name) => path.join(nvidia, name, 'include'));
    expect(found.extraIncludeDirs.slice(0, 3).sort()).toEqual(nvidiaHeaders);
    expect(found.includeDirs.slice(0, 2)).toEqual([
      path.join(torch, 'include'),
      path.join(torch, 'include', 'torch', 'csrc', 'api', 'include'),
    ]);
    expect(found.includeDirs.slice(2)).toEqual(found.extraIncludeDirs);
  });

  it.skipIf(fs.existsSync('/usr/include/nccl.h'))("names nccl.h and how to get it when NCCL's headers are missing", () => {
    const torch = pipTorch({ nccl: false });
    expect(() => findLibTorch({ LIBTORCH: torch })).toThrow(/built with NCCL, and its c10d headers need nccl\.h.*NCCL_INCLUDE_DIR/s);
    const headers = makeTempDir('nccl-headers');
    write(path.join(headers, 'nccl.h'));
    expect(findLibTorch({ LIBTORCH: torch, NCCL_INCLUDE_DIR: headers }).extraIncludeDirs[0]).toBe(headers);
  });

  it('explains a LIBTORCH that is not a LibTorch distribution', () => {
    const empty = makeTempDir('not-libtorch');
    expect(() => findLibTorch({ LIBTORCH: empty })).toThrow(/has no include\/torch\/csrc\/api\/include\/torch\/torch\.h/);
  });

  it("finds the system LibTorch of this machine (Debian's, without CUDA)", () => {
    const found = findLibTorch({});
    expect(found.source).toBe('system');
    expect(found.cuda).toBe(false);
    expect(found.definitions).toContain('USE_C10D_GLOO');
    expect(found.definitions).not.toContain('USE_C10D_NCCL');
    expect(found.extraIncludeDirs).toEqual([]);
  });
});
