import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../src/index.js';

/** Temp folders made by a test file; remove them in afterEach/afterAll. */
export class TempDirs {
  readonly #dirs: string[] = [];
  make(tag = 'extent'): string {
    const d = mkdtempSync(join(tmpdir(), `tw-${tag}-`));
    this.#dirs.push(d);
    return d;
  }
  cleanup(): void {
    for (const d of this.#dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** Deterministic bytes for (seed, n). */
export function bytesFor(seed: number, sizeBytes: number): Buffer {
  const rand = mulberry32(seed);
  const b = Buffer.allocUnsafe(sizeBytes);
  let i = 0;
  for (; i + 4 <= sizeBytes; i += 4) b.writeUInt32LE(Math.floor(rand() * 0x1_0000_0000), i);
  for (; i < sizeBytes; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

export function idOf(s: string): Buffer {
  return Buffer.from(s);
}

export const KiB = 1024;
export const MiB = 1024 * 1024;
