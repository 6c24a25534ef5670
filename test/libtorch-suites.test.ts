/**
 * The rule behind the LibTorch 2.6 run of .ci/run: every test file is classified in
 * test/libtorch-suites.json, either re-run against LibTorch 2.6 or, with a reason, not.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/reference';

interface Suites {
  libtorch2: string[];
  libtorch1Only: Record<string, string>;
}

function testFiles(dir: string): string[] {
  return fs.readdirSync(path.join(REPO_ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(relative);
    return entry.name.endsWith('.test.ts') ? [relative] : [];
  });
}

describe('test/libtorch-suites.json', () => {
  const suites = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'test', 'libtorch-suites.json'), 'utf8')) as Suites;
  const classified = [...suites.libtorch2, ...Object.keys(suites.libtorch1Only)];

  it('classifies every test file exactly once, and only files that exist', () => {
    const files = testFiles('test').sort();
    expect([...classified].sort()).toEqual(files);
    expect(new Set(classified).size).toBe(classified.length);
  });

  it('gives a reason for every file that runs on LibTorch 1.13 only', () => {
    for (const [file, reason] of Object.entries(suites.libtorch1Only)) expect(reason.length, file).toBeGreaterThan(10);
  });

  it('is what .ci/run passes to the LibTorch 2.6 run', () => {
    expect(fs.readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8')).toContain("require('./test/libtorch-suites.json').libtorch2");
  });
});
