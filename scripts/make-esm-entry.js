#!/usr/bin/env node
'use strict';
// Writes dist/index.mjs and dist/index.d.mts: the ES module entry re-exporting the CommonJS build,
// so `import { createModel } from 'adatt'` and `require('adatt')` share one instance.
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const names = Object.keys(require(dist))
  .filter((name) => name !== 'default' && name !== '__esModule')
  .sort();
fs.writeFileSync(
  path.join(dist, 'index.mjs'),
  `import adatt from './index.js';\nexport const { ${names.join(', ')} } = adatt;\nexport default adatt;\n`,
);
fs.writeFileSync(path.join(dist, 'index.d.mts'), "export * from './index.js';\n");
