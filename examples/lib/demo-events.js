#!/usr/bin/env node
// A small, seeded "recommendation events" table for the examples: one row per impression with user
// features (age, city, device, favourite genres) and three labels of different types — clicked
// (binary), rating (multiclass: low / mid / high) and watch_seconds (regression) — that share some
// of their drivers, as multi-task recommendation data does.
//
//   node examples/lib/demo-events.js events.csv [rows]     writes the CSV (default 20,000 rows)
'use strict';
const fs = require('node:fs');

const CITIES = ['berlin', 'lagos', 'lima', 'osaka', 'paris', 'pune', 'seattle', 'sydney'];
const DEVICES = ['android', 'ios', 'web'];
const GENRES = ['action', 'comedy', 'documentary', 'drama', 'horror', 'kids'];

/** The schema of the CSV (docs/datasets.md): what `fitSchema` fits on the training rows. */
const EVENTS_SCHEMA = {
  dense: ['age', { column: 'session_minutes', normalize: 'log1p' }],
  categorical: ['city', 'device'],
  multiValued: [{ column: 'genres', separator: '|' }],
  tasks: [
    { name: 'click', type: 'binary', column: 'clicked', positive: '1' },
    { name: 'rating', type: 'multiclass', column: 'rating', classes: ['low', 'mid', 'high'] },
    { name: 'watch', type: 'regression', column: 'watch_seconds' },
  ],
};

/** mulberry32: a tiny seeded generator, so the same seed always writes the same file. */
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One event as an object of column values. */
function* events(rows, seed = 1) {
  const u = random(seed);
  const normal = () => Math.sqrt(-2 * Math.log(u() + 1e-12)) * Math.cos(2 * Math.PI * u());
  const pick = (list) => list[Math.floor(u() * list.length)];
  for (let i = 0; i < rows; i += 1) {
    const age = Math.round(18 + u() * 52);
    const city = pick(CITIES);
    const device = pick(DEVICES);
    const genres = GENRES.filter(() => u() < 0.3);
    const minutes = Math.exp(1.5 + normal() * 0.8);
    // Shared driver of engagement, plus task-specific ones.
    const engagement = 0.9 * Math.log1p(minutes) - 1.6 + (device === 'web' ? -0.6 : 0.3) + (genres.includes('comedy') ? 0.7 : 0);
    const click = engagement + (age < 30 ? 0.8 : -0.2) + normal() * 0.6 > 0;
    const taste =
      (genres.includes('documentary') ? 1.2 : 0) +
      (genres.includes('horror') ? -1 : 0) +
      (age - 40) / 25 +
      (city === 'osaka' || city === 'paris' ? 0.6 : 0) +
      0.3 * engagement +
      normal() * 0.5;
    const rating = taste < -0.4 ? 'low' : taste < 0.6 ? 'mid' : 'high';
    const watch = Math.max(0, 40 + 25 * engagement + (genres.includes('kids') ? 15 : 0) + normal() * 8);
    yield {
      user_id: `u${String(i).padStart(6, '0')}`,
      age,
      session_minutes: minutes.toFixed(2),
      city,
      device,
      genres: genres.join('|'),
      clicked: click ? 1 : 0,
      rating,
      watch_seconds: watch.toFixed(1),
    };
  }
}

/** Writes `rows` events to a CSV file and returns its path. */
function writeEventsCsv(file, { rows = 20000, seed = 1 } = {}) {
  const lines = [];
  let header;
  for (const event of events(rows, seed)) {
    header ??= Object.keys(event).join(',');
    lines.push(Object.values(event).join(','));
  }
  fs.writeFileSync(file, `${header}\n${lines.join('\n')}\n`);
  return file;
}

module.exports = { EVENTS_SCHEMA, events, writeEventsCsv };

if (require.main === module) {
  const [file, rows] = process.argv.slice(2);
  if (!file) {
    console.error('usage: node examples/lib/demo-events.js FILE.csv [ROWS]');
    process.exit(2);
  }
  writeEventsCsv(file, { rows: rows === undefined ? undefined : Number(rows) });
  console.log(file);
}
