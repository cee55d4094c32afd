/** Unit and property tests of the gateway's small parts (seeded). */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ByteBudget, VersionClock } from '../src/index.js';

describe('ByteBudget', () => {
  test('property: never over capacity (but for a lone oversize grant), FIFO grants, aborts leave no trace', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 100 }),
        fc.array(fc.oneof(fc.record({ op: fc.constant('acquire' as const), bytes: fc.integer({ min: 0, max: 120 }) }), fc.record({ op: fc.constant('release' as const), which: fc.nat() }), fc.record({ op: fc.constant('abort' as const), which: fc.nat() })), { maxLength: 60 }),
        async (capacity, ops) => {
          const b = new ByteBudget(capacity);
          const held: number[] = [];
          const waiting: { bytes: number; ac: AbortController; order: number }[] = [];
          const grants: number[] = [];
          let order = 0;
          const check = (): void => {
            const sum = held.reduce((a, x) => a + x, 0);
            expect(b.usedBytes).toBe(sum);
            // Zero-byte grants hold nothing; an oversize grant is admitted only when nothing else is held.
            if (held.filter((x) => x > 0).length > 1) expect(sum).toBeLessThanOrEqual(capacity);
          };
          for (const o of ops) {
            if (o.op === 'acquire') {
              const ac = new AbortController();
              const w = { bytes: o.bytes, ac, order: order++ };
              waiting.push(w);
              b.acquire(o.bytes, ac.signal).then(
                () => {
                  waiting.splice(waiting.indexOf(w), 1);
                  held.push(w.bytes);
                  grants.push(w.order);
                },
                () => waiting.splice(waiting.indexOf(w), 1),
              );
            } else if (o.op === 'release' && held.length > 0) {
              const [bytes] = held.splice(o.which % held.length, 1);
              b.release(bytes!);
            } else if (o.op === 'abort' && waiting.length > 0) {
              waiting[o.which % waiting.length]!.ac.abort();
            }
            await new Promise((r) => setImmediate(r));
            check();
          }
          // Grants happen in request order (FIFO).
          expect([...grants].sort((a, x) => a - x)).toEqual(grants);
          for (const w of waiting) w.ac.abort();
          await new Promise((r) => setImmediate(r));
        },
      ),
      { seed: 0x6a7e, numRuns: 150 },
    );
  });

  test('reclaim is asked for room before a caller waits', async () => {
    let freeable = 50;
    const b: ByteBudget = new ByteBudget(100, (needed) => {
      const n = Math.min(needed, freeable);
      freeable -= n;
      b.releaseQuietly(n);
    });
    await b.acquire(100);
    expect(b.tryAcquire(30)).toBe(true);
    expect(b.usedBytes).toBe(100);
    expect(b.tryAcquire(30)).toBe(false);
  });
});

describe('VersionClock', () => {
  test('property: strictly increasing per writer, time in the high bits, tag in the low 22', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 2 ** 41 }), { minLength: 1, maxLength: 200 }), fc.nat(), (times, tag) => {
        let i = 0;
        const c = new VersionClock(() => times[Math.min(i++, times.length - 1)]!, tag);
        let last = -1n;
        for (let j = 0; j < times.length; j++) {
          const v = c.next();
          expect(v > last).toBe(true);
          expect(v < 1n << 64n).toBe(true);
          last = v;
        }
      }),
      { seed: 0x5eed, numRuns: 200 },
    );
    const c = new VersionClock(() => 1000, 7);
    expect(c.next()).toBe((1000n << 22n) | 7n);
  });
});
