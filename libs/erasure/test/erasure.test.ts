import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Redundancy } from '@tw/block-format';
import { createCodec } from '../src/index.js';

const SEED = 4242;

/** Deterministic bytes (xorshift) so failures replay without storing data. */
function bytesOf(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed | 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/** Every subset of {0..n-1} with at most `max` elements. */
function lossPatterns(n: number, max: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << n; mask++) {
    const lost: number[] = [];
    for (let i = 0; i < n; i++) if (mask & (1 << i)) lost.push(i);
    if (lost.length <= max) out.push(lost);
  }
  return out;
}

const POLICIES: Array<[number, number]> = [
  [2, 1],
  [4, 2],
  [6, 3],
  [8, 3],
  [10, 4],
];

describe.each(POLICIES)('ec:%i+%i', (k, m) => {
  const codec = createCodec({ kind: 'ec', k, m });
  const n = k + m;
  // Sizes: 1 byte, not a multiple of k, an exact multiple of k x 8 (zero-copy path), larger.
  const sizes = [1, 7 * k + 3, 8 * k * 64, 100_003];

  test.each(sizes)('every loss pattern of up to m fragments reconstructs byte-identical data (%i bytes)', async (size) => {
    const payload = bytesOf(size, size * 31 + k);
    const fragments = await codec.encode(payload);
    expect(fragments).toHaveLength(n);
    const shard = codec.fragmentBytes(size);
    for (const f of fragments) expect(f.length).toBe(shard);
    for (const lost of lossPatterns(n, m)) {
      const survivors = fragments.map((f, i) => (lost.includes(i) ? undefined : f));
      const out = await codec.reconstruct(survivors, size);
      if (!out.equals(payload)) throw new Error(`ec:${k}+${m} size ${size}: loss of [${lost.join(',')}] reconstructed wrong bytes`);
      // Repair: rebuilding the lost fragments gives the originals.
      if (lost.length > 0) {
        const rebuilt = await codec.rebuildFragments(survivors, size, lost);
        rebuilt.forEach((f, j) => {
          if (!f.equals(fragments[lost[j]!]!)) throw new Error(`ec:${k}+${m}: rebuilt fragment ${lost[j]} differs`);
        });
      }
    }
  });

  test('m + 1 losses give TW_ERASURE_TOO_FEW_FRAGMENTS', async () => {
    const payload = bytesOf(1000, 5);
    const fragments = await codec.encode(payload);
    for (const lost of lossPatterns(n, m + 1).filter((l) => l.length === m + 1).slice(0, 50)) {
      const survivors = fragments.map((f, i) => (lost.includes(i) ? undefined : f));
      await expect(codec.reconstruct(survivors, 1000)).rejects.toMatchObject({ code: 'TW_ERASURE_TOO_FEW_FRAGMENTS' });
    }
  });

  test('reconstructs into a caller-supplied buffer, small or large enough to decode in place', async () => {
    const size = 5000;
    const payload = bytesOf(size, 77);
    const fragments = await codec.encode(payload);
    const survivors = fragments.map((f, i) => (i < m ? undefined : f));
    for (const destSize of [size, codec.fragmentBytes(size) * k + 16]) {
      const dest = Buffer.alloc(destSize, 0xaa);
      const out = await codec.reconstruct(survivors, size, { dest });
      expect(out.equals(payload)).toBe(true);
      expect(out.buffer).toBe(dest.buffer);
      expect(out.byteOffset).toBe(dest.byteOffset);
    }
  });
});

describe('random payloads and loss patterns (property)', () => {
  const policyArb = fc.constantFrom(...POLICIES);
  test('reconstruct(encode(x) minus up to m fragments) = x', async () => {
    await fc.assert(
      fc.asyncProperty(policyArb, fc.integer({ min: 0, max: 20_000 }), fc.nat(), fc.nat(), async ([k, m], size, seed, lossSeed) => {
        const codec = createCodec({ kind: 'ec', k, m });
        const payload = bytesOf(size, seed);
        const fragments = await codec.encode(payload);
        const patterns = lossPatterns(k + m, m);
        const lost = patterns[lossSeed % patterns.length]!;
        const out = await codec.reconstruct(fragments.map((f, i) => (lost.includes(i) ? undefined : f)), size);
        expect(out.equals(payload)).toBe(true);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

test('64 MiB block, ec:4+2, two data fragments lost', async () => {
  const codec = createCodec({ kind: 'ec', k: 4, m: 2 });
  const size = 64 * 1024 * 1024;
  const payload = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4096) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
  payload.fill(0x5a, 4, 4096);
  const fragments = await codec.encode(payload);
  expect(fragments[0]!.buffer).toBe(payload.buffer); // zero-copy: no padding needed
  const out = await codec.reconstruct([undefined, fragments[1], undefined, fragments[3], fragments[4], fragments[5]], size);
  expect(out.equals(payload)).toBe(true);
});

describe.each<[string, Redundancy]>([
  ['replicate:3', { kind: 'replicate', n: 3 }],
  ['none', { kind: 'none' }],
])('%s', (_name, redundancy) => {
  const codec = createCodec(redundancy);
  test('any one copy restores the block; none left is a coded error', async () => {
    const payload = bytesOf(3333, 9);
    const fragments = await codec.encode(payload);
    expect(fragments).toHaveLength(codec.fragmentCount);
    for (let keep = 0; keep < fragments.length; keep++) {
      const out = await codec.reconstruct(fragments.map((f, i) => (i === keep ? f : undefined)), payload.length);
      expect(out.equals(payload)).toBe(true);
    }
    await expect(codec.reconstruct(fragments.map(() => undefined), payload.length)).rejects.toMatchObject({ code: 'TW_ERASURE_TOO_FEW_FRAGMENTS' });
    const dest = Buffer.alloc(4000);
    expect((await codec.reconstruct(fragments, payload.length, { dest })).equals(payload)).toBe(true);
  });
});

describe('bad arguments are coded errors', () => {
  const codec = createCodec({ kind: 'ec', k: 4, m: 2 });
  test('policy bounds', () => {
    expect(() => createCodec({ kind: 'ec', k: 17, m: 2 })).toThrow(expect.objectContaining({ code: 'TW_ERASURE_BAD_ARGUMENT' }));
    expect(() => createCodec({ kind: 'ec', k: 4, m: 5 })).toThrow(expect.objectContaining({ code: 'TW_ERASURE_BAD_ARGUMENT' }));
    expect(() => createCodec({ kind: 'replicate', n: 0 })).toThrow(expect.objectContaining({ code: 'TW_ERASURE_BAD_ARGUMENT' }));
  });
  test('fragment sizes, slot counts, indexes, destination, abort', async () => {
    const fragments = await codec.encode(bytesOf(100, 1));
    await expect(codec.reconstruct(fragments.slice(0, 5), 100)).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.reconstruct([fragments[0]!.subarray(1), ...fragments.slice(1)], 100)).rejects.toMatchObject({ code: 'TW_ERASURE_FRAGMENT_SIZE' });
    await expect(codec.reconstruct(fragments, -1)).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.rebuildFragments(fragments, 100, [6])).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.reconstruct([undefined, ...fragments.slice(1)], 100, { dest: Buffer.alloc(10) })).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    const ac = new AbortController();
    ac.abort();
    await expect(codec.encode(bytesOf(100, 1), ac.signal)).rejects.toMatchObject({ code: 'TW_ERASURE_ABORTED' });
  });
});

test('encoding a large block does not block the event loop', async () => {
  const codec = createCodec({ kind: 'ec', k: 8, m: 3 });
  const payload = Buffer.alloc(32 * 1024 * 1024, 1);
  {
    // Several encodes in flight: if they ran on the event loop, the interval could not fire
    // between them until all had finished.
    const pending = [codec.encode(payload), codec.encode(payload), codec.encode(payload)];
    let settled = false;
    const all = Promise.all(pending).then(() => (settled = true));
    await new Promise<void>((resolve) => setImmediate(resolve));
    const settledBeforeTheLoopTurned = settled;
    await all;
    expect(settledBeforeTheLoopTurned).toBe(false);
  }
});

describe('encodeInto: parity into caller buffers', () => {
  test.each(POLICIES)('ec:%i+%i gives the same fragments as encode, contiguous or not', async (k, m) => {
    const codec = createCodec({ kind: 'ec', k, m });
    const payload = bytesOf(50_001, k * 13 + m);
    const expected = await codec.encode(payload);
    const shard = codec.fragmentBytes(payload.length);
    const pool = Buffer.alloc(shard * m);
    const contiguous = Array.from({ length: m }, (_, i) => pool.subarray(i * shard, (i + 1) * shard));
    const scattered = Array.from({ length: m }, () => Buffer.alloc(shard));
    for (const parity of [contiguous, scattered]) {
      const got = await codec.encodeInto(payload, parity);
      got.forEach((f, i) => expect(f.equals(expected[i]!)).toBe(true));
      for (let i = 0; i < m; i++) expect(got[k + i]!.buffer).toBe(parity[i]!.buffer);
    }
    await expect(codec.encodeInto(payload, contiguous.slice(1))).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.encodeInto(payload, [Buffer.alloc(1), ...contiguous.slice(1)])).rejects.toMatchObject({ code: 'TW_ERASURE_FRAGMENT_SIZE' });
  });
  test('replication has no parity', async () => {
    const codec = createCodec({ kind: 'replicate', n: 2 });
    expect(await codec.encodeInto(Buffer.from('abc'), [])).toHaveLength(2);
    await expect(codec.encodeInto(Buffer.from('abc'), [Buffer.alloc(3)])).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
  });
});
