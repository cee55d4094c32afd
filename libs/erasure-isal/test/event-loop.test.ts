import { expect, test } from 'vitest';
import { isal, isalCreate } from '../src/binding.js';
import { createIsalCodec } from '../src/index.js';

/**
 * Counts event-loop turns (setImmediate) after which `p` is still pending; bounded by
 * `maxTurns`. Work done on the event loop settles before the first turn ends: zero.
 */
async function turnsWhilePending(p: Promise<unknown>, maxTurns: number): Promise<number> {
  let settled = false;
  const done = p.then(
    () => (settled = true),
    () => (settled = true),
  );
  let turns = 0;
  for (let i = 0; i < maxTurns; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (settled) break;
    turns++;
  }
  await done;
  return turns;
}

test('the native coding call returns before its work is done: the callback never runs on the caller stack', async () => {
  const binding = isal();
  const ctx = isalCreate(8, 3);
  const len = 4 << 20;
  const data = Array.from({ length: 8 }, (_, i) => Buffer.alloc(len, i));
  const parity = Array.from({ length: 3 }, () => Buffer.alloc(len));
  let called = false;
  const finished = new Promise<void>((resolve, reject) => {
    binding.run(ctx, [0, 1, 2, 3, 4, 5, 6, 7], data, [8, 9, 10], parity, (error) => {
      called = true;
      if (error) reject(error);
      else resolve();
    });
  });
  expect(called).toBe(false);
  await finished;
  expect(called).toBe(true);
});

test('the event loop keeps turning while large encodes and a large reconstruct run', async () => {
  const codec = createIsalCodec({ kind: 'ec', k: 8, m: 3 });
  const payload = Buffer.alloc(64 * 1024 * 1024, 1);
  // Three 64 MiB encodes in flight: if they ran on the event loop, all would have settled
  // before the first setImmediate turn ended.
  const encodes = Promise.all([codec.encode(payload), codec.encode(payload), codec.encode(payload)]);
  expect(await turnsWhilePending(encodes, 10_000_000)).toBeGreaterThan(0);
  const fragments = (await encodes)[0]!;
  const reconstruct = codec.reconstruct(fragments.map((f, i) => (i < 3 ? undefined : f)), payload.length);
  expect(await turnsWhilePending(reconstruct, 10_000_000)).toBeGreaterThan(0);
  expect((await reconstruct).equals(payload)).toBe(true);
});

test('several encodes in flight run concurrently on the thread pool and all complete', async () => {
  const codec = createIsalCodec({ kind: 'ec', k: 4, m: 2 });
  const payloads = [1, 2, 3, 4].map((i) => Buffer.alloc(8 * 1024 * 1024 + i, i));
  const results = await Promise.all(payloads.map((p) => codec.encode(p)));
  for (const [i, fragments] of results.entries()) {
    const out = await codec.reconstruct(fragments.map((f, j) => (j === 0 || j === 3 ? undefined : f)), payloads[i]!.length);
    expect(out.equals(payloads[i]!)).toBe(true);
  }
});
