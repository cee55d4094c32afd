#!/usr/bin/env node
// Runs the built CLI (`npm run build` first); from sources: node --conditions=tw-source --import tsx apps/twctl/src/main.ts
import '../dist/main.js';
