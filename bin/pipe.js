#!/usr/bin/env node
// Thin launcher: the CLI is compiled TypeScript in dist/ (built by `npm ci` through `prepare`).
import('../dist/runner/cli.js').then((m) => m.main(process.argv.slice(2)));
