import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { MemoryBackend } from './memory-backend.js';
import { serve } from './serve.js';

/**
 * Byte-for-byte answers of a real redis-server 7.0.15 (`--databases 1`; without a password, and
 * with `--requirepass pw` for the auth file), recorded by tools/compare-with-redis.py: each case is
 * one connection's input, the bytes Redis replied and whether it closed the connection. HELLO's
 * `id` field is the connection id and is masked.
 */
interface GoldenCase {
  input: string;
  output: string;
  closed: boolean;
}
type Golden = { redis: string; cases: GoldenCase[] };
const load = (name: string): Golden => JSON.parse(readFileSync(join(import.meta.dirname, 'testdata', name), 'utf8')) as Golden;

const maskId = (b: Buffer): string => b.toString('latin1').replace(/\$2\r\nid\r\n:\d+\r\n/g, '$2\r\nid\r\n:ID\r\n');

describe.each([
  ['no password', load('redis-7.0.15-golden.json'), null],
  ['requirepass pw', load('redis-7.0.15-auth-golden.json'), 'pw'],
] as const)('replies match redis-server 7.0.15 byte for byte (%s)', (_name, golden, password) => {
  test('the golden file holds the recorded cases', () => {
    expect(golden.redis).toContain('v=7.0.15');
    expect(golden.cases.length).toBeGreaterThan(200);
    expect(golden.cases.filter((c) => c.closed).length).toBeGreaterThan(20);
  });

  test.each(golden.cases.map((c, i) => [i, c] as const))('case %i', async (_i, c) => {
    const r = await serve([Buffer.from(c.input, 'hex')], new MemoryBackend(password));
    expect(maskId(r.out)).toBe(maskId(Buffer.from(c.output, 'hex')));
    expect(r.closed).toBe(c.closed);
  });

  test('the same answers whatever the chunking of the input', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: golden.cases.length - 1 }), fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 64 }), async (i, sizes) => {
        const c = golden.cases[i]!;
        const input = Buffer.from(c.input, 'hex');
        const chunks: Buffer[] = [];
        for (let at = 0, k = 0; at < input.length; k++) {
          const n = sizes[k % sizes.length]!;
          chunks.push(input.subarray(at, at + n));
          at += n;
        }
        const r = await serve(chunks, new MemoryBackend(password));
        expect(maskId(r.out)).toBe(maskId(Buffer.from(c.output, 'hex')));
        expect(r.closed).toBe(c.closed);
      }),
      { seed: 6001, numRuns: 300 },
    );
  });
});
