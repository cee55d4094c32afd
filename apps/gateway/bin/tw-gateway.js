#!/usr/bin/env node
// Runs the built gateway (`npm run build` first); from sources during development:
//   node --conditions=tw-source --import tsx apps/gateway/src/main.ts
import '../dist/main.js';
