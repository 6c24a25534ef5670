#!/usr/bin/env node
'use strict';
/**
 * Vocabulary fitting at scale (`npm run bench:vocab-fit`): fitSchema and encode of a table of
 * --rows rows (default 20M) whose id column holds --distinct distinct values (default 5M, drawn
 * Zipf-like: a few values very often, most rarely), as a reader leaves it (dictionary-coded text).
 * Prints wall time per step and RSS; a memory baseline of the table alone is printed first.
 *
 *   node --max-old-space-size=8192 bench/vocab-fit.js [--rows N] [--distinct N] [--max-vocabulary K]
 */
const adatt = require('../dist');

function parseArgs(argv) {
  const args = { rows: 20_000_000, distinct: 5_000_000, maxVocabulary: undefined };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`${argv[i]} needs a positive integer`);
    if (argv[i] === '--rows') args.rows = value;
    else if (argv[i] === '--distinct') args.distinct = value;
    else if (argv[i] === '--max-vocabulary') args.maxVocabulary = value;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

function main() {
  const { rows, distinct, maxVocabulary } = parseArgs(process.argv.slice(2));
  let state = 12345;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 0.5) / 2 ** 32;
  };
  // Every value occurs at least once; the rest of the rows pick value floor(distinct * u^4).
  const values = Array.from({ length: distinct }, (_, i) => (0x10000000 + ((i * 2654435761) % 0xefffffff)).toString(16));
  const codes = new Int32Array(rows);
  for (let r = 0; r < rows; r += 1) codes[r] = r < distinct ? r : Math.floor(distinct * uniform() ** 4);
  const labels = Float64Array.from({ length: rows }, (_, r) => (codes[r] % 3 === 0 ? 1 : 0));
  const table = new adatt.Table('generated ids', [
    { kind: 'text', name: 'item', position: 0, codes, values },
    { kind: 'number', name: 'clicked', position: 1, values: labels },
  ]);
  global.gc?.();
  console.log(
    `table: ${rows.toLocaleString('en-US')} rows, ${distinct.toLocaleString('en-US')} distinct ids; RSS ${mib(process.memoryUsage().rss)}`,
  );
  const spec = {
    categorical: [{ column: 'item', ...(maxVocabulary ? { maxVocabulary } : {}) }],
    tasks: [{ name: 'clicked', type: 'binary', column: 'clicked', positive: 1 }],
  };
  let start = process.hrtime.bigint();
  const schema = adatt.fitSchema(spec, table);
  const fitSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `fitSchema: ${fitSeconds.toFixed(2)} s, vocabulary ${schema.categorical[0].vocabulary.length.toLocaleString('en-US')}; RSS ${mib(process.memoryUsage().rss)}`,
  );
  start = process.hrtime.bigint();
  const encoded = adatt.encode(schema, table);
  const encodeSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(
    `encode: ${encodeSeconds.toFixed(2)} s (${encoded.categorical.length.toLocaleString('en-US')} ids); RSS ${mib(process.memoryUsage().rss)}, peak ${mib(process.resourceUsage().maxRSS * 1024)}`,
  );
}

main();
