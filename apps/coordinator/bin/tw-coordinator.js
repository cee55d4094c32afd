#!/usr/bin/env node
// Runs the built coordinator (`npm run build` first); from sources during development:
//   node --conditions=tw-source --import tsx apps/coordinator/src/main.ts --config FILE
import '../dist/main.js';
