#!/usr/bin/env node
// Runs the built storage node (`npm run build` first); from sources during development:
//   node --conditions=tw-source --import tsx apps/storage-node/src/main.ts
import '../dist/main.js';
