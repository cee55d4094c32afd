#!/usr/bin/env -S node --max-semi-space-size=64
// --max-semi-space-size=64: a larger young generation (scavenges were 17-19 % of the CPU at
// 20k blocks/s; see docs/coordinator-performance.md).
// Runs the built coordinator (`npm run build` first); from sources during development:
//   node --conditions=tw-source --import tsx apps/coordinator/src/main.ts --config FILE
import '../dist/main.js';
