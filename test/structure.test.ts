/**
 * The layout rules of lib/ that the compiler does not check: no module imports itself through
 * others, not even for types (a cycle ties two concerns together and makes load order matter).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT } from './helpers/reference';

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return entry.name.endsWith('.ts') ? [file] : [];
  });
}

/** The .ts files `file` imports, re-exports from or requires (type-only imports too; data files such as package.json aside). */
function importsOf(file: string): string[] {
  const { importedFiles } = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true);
  return importedFiles.flatMap(({ fileName }) => {
    if (!fileName.startsWith('.') || path.extname(fileName) === '.json') return [];
    const base = path.resolve(path.dirname(file), fileName);
    const target = [`${base}.ts`, path.join(base, 'index.ts')].find((candidate) => fs.existsSync(candidate));
    if (target === undefined) throw new Error(`${file} imports ${fileName}, which is not a .ts file`);
    return [target];
  });
}

/** The import cycles among the .ts files under `root`, found depth first, as 'a.ts -> b.ts -> a.ts'. */
function importCycles(root: string): string[] {
  const files = sourceFiles(root);
  const graph = new Map(files.map((file) => [file, importsOf(file)]));
  const cycles: string[] = [];
  const trail: string[] = [];
  const done = new Set<string>();
  const visit = (file: string): void => {
    trail.push(file);
    for (const next of graph.get(file) ?? []) {
      const at = trail.indexOf(next);
      if (at >= 0) cycles.push([...trail.slice(at), next].map((f) => path.relative(root, f)).join(' -> '));
      else if (!done.has(next)) visit(next);
    }
    trail.pop();
    done.add(file);
  };
  for (const file of files) if (!done.has(file)) visit(file);
  return cycles;
}

describe('lib/ structure', () => {
  it('has no import cycles, type-only imports included', () => {
    expect(importCycles(path.join(REPO_ROOT, 'lib'))).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const dir = makeTempDir('cycles');
    fs.mkdirSync(path.join(dir, 'c'));
    fs.writeFileSync(path.join(dir, 'a.ts'), "import type { B } from './b';\nexport type A = B[];\n");
    fs.writeFileSync(path.join(dir, 'b.ts'), "import { c } from './c';\nexport type B = number;\nexport const d = c;\n");
    fs.writeFileSync(path.join(dir, 'c', 'index.ts'), "export type { A } from '../a';\nexport const c = 1;\n");
    fs.writeFileSync(path.join(dir, 'd.ts'), "import { c } from './c';\nexport const e = c;\n");
    expect(importCycles(dir)).toEqual([`a.ts -> b.ts -> ${path.join('c', 'index.ts')} -> a.ts`]);
  });
});
