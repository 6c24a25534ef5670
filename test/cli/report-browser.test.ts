/**
 * report.html in headless Chromium (Debian's `chromium` package): the page runs without errors,
 * renders every chart, and makes a non-trivial screenshot, with all network access switched off.
 * ADATT_SKIP_BROWSER_TESTS=1 skips this file on machines without Chromium.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { adatt, requireCompiledCli, SMALL_RUN, tempDir } from './helpers';

const skip = process.env.ADATT_SKIP_BROWSER_TESTS === '1';

function findChromium(): string {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('which', [name], { encoding: 'utf8' }).trim();
    } catch {
      // try the next name
    }
  }
  throw new Error('headless Chromium is needed for the report test: apt-get install -y chromium (or set ADATT_SKIP_BROWSER_TESTS=1)');
}

const work = tempDir('browser');
const run = path.join(work, 'run');
/** The same run with GradNorm task weights and task-gradient conflict measured: their charts too. */
const objectivesRun = path.join(work, 'objectives-run');
/** A binary task calibrated on validation: its reliability chart. */
const calibratedRun = path.join(work, 'calibrated-run');

/** Runs Chromium headless and offline on the report; returns stdout and the stderr log. */
function chromium(args: string[], dir = run): { stdout: string; stderr: string } {
  const profile = fs.mkdtempSync(path.join(work, 'profile-'));
  const result = spawnSync(
    findChromium(),
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${profile}`,
      '--enable-logging=stderr',
      '--v=0',
      ...args,
      `file://${path.join(dir, 'report.html')}`,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (result.error) throw result.error;
  return { stdout: result.stdout, stderr: result.stderr };
}

beforeAll(async () => {
  if (skip) return;
  requireCompiledCli();
  findChromium();
  const result = await adatt(['train', ...SMALL_RUN, '--out', run]);
  expect(result.code).toBe(0);
  const objectives = await adatt([
    'train',
    ...SMALL_RUN,
    '--set',
    'training.taskWeighting=gradnorm',
    '--set',
    'training.gradientConflict={"every":4}',
    '--out',
    objectivesRun,
  ]);
  expect(objectives.code).toBe(0);
  const rows = Array.from({ length: 600 }, (_, i) => `${((i * 37) % 100) / 100},${(i * 37) % 100 > 30 + (i % 7) * 5 ? 1 : 0}`);
  fs.writeFileSync(path.join(work, 'clicks.csv'), ['x,click', ...rows].join('\n'));
  const config = path.join(work, 'clicks.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      data: { source: 'clicks.csv', schema: { dense: ['x'], tasks: [{ name: 'click', type: 'binary', column: 'click', positive: '1' }] } },
      model: { kind: 'single-task', expertDims: [[8]], towerDims: [] },
      training: { epochs: 2, threads: 1 },
    }),
  );
  const calibrated = await adatt(['train', config, '--calibrate', 'isotonic', '--out', calibratedRun]);
  expect(calibrated.code).toBe(0);
}, 120_000);

describe.skipIf(skip)('report.html in headless Chromium', () => {
  it('runs its script without errors and renders every chart', () => {
    const { stdout, stderr } = chromium(['--dump-dom']);
    // 2 tasks x (loss + validation metric) line charts, one heatmap per level, and per level the
    // experts' zero-output shares and output norms.
    expect(stdout).toContain('data-rendered="10"');
    expect(stdout).toContain('level 1: share of zero ReLU outputs per expert');
    expect(stdout).toContain('<svg class="chart heatmap"');
    expect(stderr).not.toMatch(/Uncaught|Refused to|ERR_/);
  }, 60_000);

  it('renders the task-weight and gradient-conflict charts of a GradNorm run', () => {
    const { stdout, stderr } = chromium(['--dump-dom'], objectivesRun);
    // The ten above, the task weights, the pairwise cosine and the norms.
    expect(stdout).toContain('data-rendered="13"');
    expect(stdout).toContain('task-gradient cosine on shared parameters');
    expect(stderr).not.toMatch(/Uncaught|Refused to|ERR_/);
  }, 60_000);

  it('renders the reliability chart of a calibrated run', () => {
    const { stdout, stderr } = chromium(['--dump-dom'], calibratedRun);
    // Loss and validation AUC of the one task, the network's expert health, and its reliability before and after.
    expect(stdout).toContain('data-rendered="5"');
    expect(stdout).toMatch(/click: reliability \(ECE 0\.\d+ → 0\.\d+\)/);
    expect(stdout).toContain('after (isotonic)');
    expect(stderr).not.toMatch(/Uncaught|Refused to|ERR_/);
  }, 60_000);

  it('takes a full-page screenshot with content in it', () => {
    const shot = path.join(work, 'report.png');
    chromium([`--screenshot=${shot}`, '--window-size=1200,1600', '--hide-scrollbars']);
    expect(fs.existsSync(shot)).toBe(true);
    // A blank 1200x1600 PNG compresses to a few KB; charts, tables and text make it much larger.
    expect(fs.statSync(shot).size).toBeGreaterThan(60_000);
    const png = fs.readFileSync(shot);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(1200);
  }, 60_000);
});
