#!/usr/bin/env node
// The `adatt` command line; the code is in lib/cli (compiled to dist/cli). See docs/cli.md.
'use strict';

let cli;
try {
  cli = require('../dist/cli');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/cli')) {
    process.stderr.write('adatt: the compiled CLI (dist/cli) is missing; run `npm run build:ts` in the package folder\n');
    process.exit(1);
  }
  throw err;
}
cli.runCli();
