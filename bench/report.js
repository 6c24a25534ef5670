#!/usr/bin/env node
'use strict';
/**
 * Turns a `bench/run.js --json FILE` result into the Markdown tables of docs/benchmarks.md
 * (printed) and a self-contained SVG chart of how throughput grows with T, m and batch size.
 *
 *   node bench/report.js results.json [--svg docs/benchmarks-scaling.svg]
 */
const { median } = require('./stats');
const fs = require('node:fs');
const { HEADLINE, HEADLINE_BATCH } = require('./configs');

const fmt = (x, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–';
const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–');
const get = (r, side, key) => r?.[side]?.[key];
// Both sides are asked for the same count: the peer with torch.set_num_threads(N) and OMP/OPENBLAS_NUM_THREADS=N,
// ours with setNumThreads(N) (with OpenBLAS's pthread build: N BLAS threads, 1 intra-op thread).
const threads = (data) => `${data.threads} thread${data.threads === 1 ? '' : 's'}`;
const envText = (data) =>
  Object.entries(data.env ?? {})
    .map(([k, v]) => `, ${k}=${v}`)
    .join('');

function markdownTable(head, rows) {
  const align = head.map((_, i) => (i === 0 ? '---' : '---:'));
  return [head, align, ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}

function markdown(data) {
  const { machine, results, gemm } = data;
  const find = (name, batch) => results.find((r) => r.name === name && r.batch === batch);
  const out = [];
  const libs = machine.ours.libraries ?? [];
  const blas = libs
    .filter((p) => /blas|lapack/.test(p))
    .map((p) => p.split('/').slice(-2).join('/'))
    .join(', ');
  out.push(
    '### Machine and run',
    '',
    `- CPU: ${machine.cpu} (lscpu family/model ${machine.cpuFamilyModel ?? '?'}${machine.avx512 ? ', AVX-512' : ''}), ${machine.cpus} CPUs ` +
      `(${machine.threadsPerCore} thread(s) per core), ${fmt(machine.memoryGiB, 0)} GiB; Linux ${machine.kernel}`,
    `- LibTorch ${machine.ours.libtorchVersion} (Debian libtorch1.13 / python3-torch ${machine.peer?.torch ?? '?'}, Python ${machine.peer?.python ?? '?'}), ATen parallel backend OpenMP, BLAS: ${blas || 'unknown'} (torch BLAS_INFO=${machine.peer?.blasInfo ?? '?'}), oneDNN ${libs.some((p) => /dnnl/.test(p)) ? 'loaded' : 'not loaded'}`,
    `- Node ${machine.node}; ${threads(data)} on both sides${envText(data)}; ${data.repeats} repeats (medians); ~${data.workGflopPerEpoch} GFLOP of training per epoch; suite runtime ${fmt(data.seconds / 60, 1)} min`,
    `- fp32 GEMM (torch.mm, ${threads(data)}, best of two measurements): 1024×1024×1024 **${fmt(gemm.rateGflops, 1)} GFLOP/s**; ` +
      `${gemm.before.rates[1].shape.join('×')} ${fmt(Math.max(gemm.before.rates[1].gflops, gemm.after.rates?.[1]?.gflops ?? 0), 1)} GFLOP/s`,
    `- other processes used ${fmt(median(results.flatMap((r) => [get(r, 'ours', 'otherCpusDuring'), get(r, 'peer', 'otherCpusDuring')])), 2)} CPUs during a run (median over cells)` +
      `${data.addon && data.addon.start !== data.addon.end ? '; the addon binary was rebuilt by other work during the run' : ''}`,
    '',
  );

  const h = find(HEADLINE, HEADLINE_BATCH);
  if (h) {
    out.push(
      `### Headline: ${HEADLINE}, batch ${HEADLINE_BATCH}`,
      '',
      markdownTable(
        ['', 'adatt (ours)', 'Python peer', 'ours / peer'],
        [
          [
            'training, examples/s',
            fmt(get(h, 'ours', 'trainExamplesPerSecond')),
            fmt(get(h, 'peer', 'trainExamplesPerSecond')),
            `${fmt(h.ratio.train, 2)}×`,
          ],
          [
            'inference, examples/s',
            fmt(get(h, 'ours', 'inferExamplesPerSecond')),
            fmt(get(h, 'peer', 'inferExamplesPerSecond')),
            `${fmt(h.ratio.infer, 2)}×`,
          ],
          ['training step, median ms', fmt(get(h, 'ours', 'stepMs'), 1), fmt(get(h, 'peer', 'stepMs'), 1), `${fmt(h.ratio.stepMs, 2)}×`],
          [
            'training GFLOP/s (of GEMM rate)',
            `${fmt(get(h, 'ours', 'trainGflops'), 1)} (${pct(get(h, 'ours', 'trainFractionOfGemm'))})`,
            `${fmt(get(h, 'peer', 'trainGflops'), 1)} (${pct(get(h, 'peer', 'trainFractionOfGemm'))})`,
            '',
          ],
          [
            'inference GFLOP/s (of GEMM rate)',
            `${fmt(get(h, 'ours', 'inferGflops'), 1)} (${pct(get(h, 'ours', 'inferFractionOfGemm'))})`,
            `${fmt(get(h, 'peer', 'inferGflops'), 1)} (${pct(get(h, 'peer', 'inferFractionOfGemm'))})`,
            '',
          ],
          ['peak RSS, MiB', fmt(get(h, 'ours', 'peakRssMiB')), fmt(get(h, 'peer', 'peakRssMiB')), ''],
        ],
      ),
      '',
      `Forward ${fmt(h.forwardFlops / 1e6, 3)} MFLOP per example, training ${fmt(h.trainFlops / 1e6, 3)} MFLOP (3× forward); ${fmt(get(h, 'ours', 'parameters'))} parameters.`,
      '',
    );
  }

  out.push(
    '### All configurations',
    '',
    markdownTable(
      [
        'config',
        'batch',
        'train MFLOP/ex',
        'train ex/s ours',
        'peer',
        '×',
        'infer ex/s ours',
        'peer',
        '×',
        'step ms ours',
        'peer',
        'train GFLOP/s ours (% GEMM)',
        'peer (% GEMM)',
        'peak RSS MiB ours',
        'peer',
      ],
      results.map((r) => [
        r.name,
        r.batch,
        fmt(r.trainFlops / 1e6, 2),
        fmt(get(r, 'ours', 'trainExamplesPerSecond')),
        fmt(get(r, 'peer', 'trainExamplesPerSecond')),
        fmt(r.ratio.train, 2),
        fmt(get(r, 'ours', 'inferExamplesPerSecond')),
        fmt(get(r, 'peer', 'inferExamplesPerSecond')),
        fmt(r.ratio.infer, 2),
        fmt(get(r, 'ours', 'stepMs'), 1),
        fmt(get(r, 'peer', 'stepMs'), 1),
        `${fmt(get(r, 'ours', 'trainGflops'), 1)} (${pct(get(r, 'ours', 'trainFractionOfGemm'))})`,
        `${fmt(get(r, 'peer', 'trainGflops'), 1)} (${pct(get(r, 'peer', 'trainFractionOfGemm'))})`,
        fmt(get(r, 'ours', 'peakRssMiB')),
        fmt(get(r, 'peer', 'peakRssMiB')),
      ]),
    ),
    '',
  );

  const sp = results.filter((r) => r.family === 'adatt-sp' && r.batch === HEADLINE_BATCH);
  const Ts = [...new Set(sp.map((r) => r.T))].sort((a, b) => a - b);
  const ms = [...new Set(sp.map((r) => r.m))].sort((a, b) => a - b);
  const cell = (r) => (r ? `${fmt(get(r, 'ours', 'trainExamplesPerSecond'))} (${fmt(get(r, 'peer', 'trainExamplesPerSecond'))})` : '–');
  if (sp.length) {
    out.push(
      `### AdaTT-sp: training examples/s against T and m (batch ${HEADLINE_BATCH}; ours (peer))`,
      '',
      markdownTable(
        ['T', ...ms.map((m) => `m = ${m}`)],
        Ts.map((T) => [T, ...ms.map((m) => cell(sp.find((r) => r.T === T && r.m === m)))]),
      ),
      '',
    );
  }
  const batches = [...new Set(results.map((r) => r.batch))].sort((a, b) => a - b);
  if (batches.length > 1) {
    const names = [...new Set(results.map((r) => r.name))];
    out.push(
      '### Training examples/s against batch size (ours (peer))',
      '',
      markdownTable(
        ['config', ...batches.map((b) => `batch ${b}`)],
        names.map((name) => [name, ...batches.map((b) => cell(find(name, b)))]),
      ),
      '',
    );
  }
  return out.join('\n');
}

// ------------------------------------------------------------------------------------------ SVG

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

function logTicks(lo, hi) {
  const ticks = [];
  for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p += 1) {
    for (const k of [1, 2, 5]) {
      const v = k * 10 ** p;
      if (v >= lo / 1.001 && v <= hi * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

const short = (v) => (v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : `${v}`);

/** One log-log panel of width w, height h at (x0, y0); series: [{ label, color, dash, points: [[x, y]] }]. */
function panel({ x0, y0, w, h, title, xLabel, yLabel, xs, series }) {
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((y) => y > 0);
  if (ys.length === 0) return '';
  const [yLo, yHi] = [Math.min(...ys) / 1.3, Math.max(...ys) * 1.3];
  const [xLo, xHi] = [Math.min(...xs) / 1.15, Math.max(...xs) * 1.15];
  const left = x0 + 58;
  const top = y0 + 28;
  const pw = w - 70;
  const ph = h - 100;
  const X = (x) => left + (pw * Math.log(x / xLo)) / Math.log(xHi / xLo);
  const Y = (y) => top + ph - (ph * Math.log(y / yLo)) / Math.log(yHi / yLo);
  const parts = [
    `<text x="${x0 + w / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${title}</text>`,
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`,
  ];
  for (const t of logTicks(yLo, yHi)) {
    parts.push(
      `<line x1="${left}" x2="${left + pw}" y1="${Y(t).toFixed(1)}" y2="${Y(t).toFixed(1)}" stroke="#eee"/>`,
      `<text x="${left - 4}" y="${(Y(t) + 4).toFixed(1)}" text-anchor="end">${short(t)}</text>`,
    );
  }
  for (const x of xs) {
    parts.push(`<text x="${X(x).toFixed(1)}" y="${top + ph + 15}" text-anchor="middle">${x}</text>`);
  }
  parts.push(
    `<text x="${left + pw / 2}" y="${top + ph + 32}" text-anchor="middle">${xLabel}</text>`,
    `<text transform="translate(${x0 + 12},${top + ph / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`,
  );
  for (const s of series) {
    const pts = s.points.filter((p) => p[1] > 0);
    if (pts.length === 0) continue;
    const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ' stroke-dasharray="5,4"' : ''}/>`);
    for (const [x, y] of pts) parts.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
  }
  // Legend below the plot: one entry per colour, then the solid/dashed key.
  const seen = new Map(series.filter((s) => !s.dash).map((s) => [s.label, s.color]));
  let lx = left;
  let ly = top + ph + 50;
  for (const [label, color] of seen) {
    if (lx + 110 > left + pw) {
      lx = left;
      ly += 14;
    }
    parts.push(
      `<line x1="${lx}" x2="${lx + 14}" y1="${ly - 4}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${lx + 18}" y="${ly}">${label}</text>`,
    );
    lx += 110;
  }
  return parts.join('\n');
}

function svg(data) {
  const { results } = data;
  const line = (rows, x, key, label, color) =>
    [false, true].map((dash) => ({
      label,
      color,
      dash,
      points: rows.map((r) => [r[x], get(r, dash ? 'peer' : 'ours', key)]).filter((p) => Number.isFinite(p[1])),
    }));
  const sp = results.filter((r) => r.family === 'adatt-sp' && r.batch === HEADLINE_BATCH);
  const Ts = [...new Set(sp.map((r) => r.T))].sort((a, b) => a - b);
  const ms = [...new Set(sp.map((r) => r.m))].sort((a, b) => a - b);
  const byM = (key) =>
    ms.flatMap((m, i) =>
      line(
        sp.filter((r) => r.m === m).sort((a, b) => a.T - b.T),
        'T',
        key,
        `m = ${m}`,
        COLORS[i],
      ),
    );
  const batches = [...new Set(results.map((r) => r.batch))].sort((a, b) => a - b);
  const t3 = [...new Set(results.filter((r) => r.T === 3 && (r.family !== 'adatt-sp' || r.name === HEADLINE)).map((r) => r.name))];
  const byBatch = t3.flatMap((name, i) =>
    line(
      results.filter((r) => r.name === name).sort((a, b) => a.batch - b.batch),
      'batch',
      'trainExamplesPerSecond',
      name,
      COLORS[i % COLORS.length],
    ),
  );
  const W = 380;
  const H = 330;
  const panels = [
    Ts.length > 1 &&
      panel({
        x0: 0,
        y0: 0,
        w: W,
        h: H,
        title: `AdaTT-sp training vs T (batch ${HEADLINE_BATCH})`,
        xLabel: 'tasks T',
        yLabel: 'examples/s',
        xs: Ts,
        series: byM('trainExamplesPerSecond'),
      }),
    Ts.length > 1 &&
      panel({
        x0: W,
        y0: 0,
        w: W,
        h: H,
        title: `AdaTT-sp training GFLOP/s vs T`,
        xLabel: 'tasks T',
        yLabel: 'GFLOP/s',
        xs: Ts,
        series: byM('trainGflops'),
      }),
    batches.length > 1 &&
      panel({
        x0: 2 * W,
        y0: 0,
        w: W,
        h: H + 40,
        title: 'Training vs batch size (T = 3)',
        xLabel: 'batch size',
        yLabel: 'examples/s',
        xs: batches,
        series: byBatch,
      }),
  ].filter(Boolean);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${3 * W}" height="${H + 70}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
${panels.join('\n')}
<text x="8" y="${H + 62}" fill="#555">solid: adatt (LibTorch, ours); dashed: Python peer (scripts/reference, PyTorch ${data.machine.peer?.torch ?? ''}); ${threads(data)}${envText(data)}; log scales; ${data.machine.cpu}</text>
</svg>
`;
}

function main() {
  const argv = process.argv.slice(2);
  const file = argv.find((a) => !a.startsWith('--'));
  if (!file) throw new Error('usage: node bench/report.js results.json [--svg FILE]');
  const svgAt = argv.indexOf('--svg');
  const data = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (svgAt >= 0) fs.writeFileSync(argv[svgAt + 1], svg(data));
  console.log(markdown(data));
}

main();
