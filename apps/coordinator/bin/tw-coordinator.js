#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.hugetlb=1 node --max-semi-space-size=64
// --max-semi-space-size=64: a larger young generation (scavenges were 17-19 % of the CPU at
// 20k blocks/s). GLIBC_TUNABLES=glibc.malloc.hugetlb=1: malloc asks for transparent huge pages,
// fewer costly page faults (see docs/coordinator-performance.md; it replaces any GLIBC_TUNABLES
// of the caller's: run node yourself to combine them).
// Runs the built coordinator (`npm run build` first); from sources during development:
//   node --conditions=tw-source --import tsx apps/coordinator/src/main.ts --config FILE
import '../dist/main.js';
