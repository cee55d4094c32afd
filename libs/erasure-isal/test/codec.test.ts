import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { Redundancy } from '@tw/block-format';
import { createCodec } from '@tw/erasure';
import { createIsalCodec, isalAvailable } from '../src/index.js';
import { POLICIES, bytesOf, lossPatterns, referenceParity } from './helpers.js';

const SEED = 20261128;

test('the addon is built and passes its self-test (CI installs libisal-dev and runs node-gyp)', () => {
  expect(isalAvailable()).toBe(true);
});

describe.each(POLICIES)('ec:%i+%i', (k, m) => {
  const codec = createIsalCodec({ kind: 'ec', k, m });
  const n = k + m;
  // 1 byte, not a multiple of k, an exact multiple of k x 8 (zero-copy), larger and odd.
  const sizes = [1, 7 * k + 3, 8 * k * 64, 100_003];

  test.each(sizes)('every loss pattern of up to m fragments reconstructs byte-identical data and rebuilds identical fragments (%i bytes)', async (size) => {
    const payload = bytesOf(size, size * 31 + k);
    const fragments = await codec.encode(payload);
    expect(fragments).toHaveLength(n);
    const shard = codec.fragmentBytes(size);
    for (const f of fragments) expect(f.length).toBe(shard);
    for (const lost of lossPatterns(n, m)) {
      const survivors = fragments.map((f, i) => (lost.includes(i) ? undefined : f));
      const out = await codec.reconstruct(survivors, size);
      if (!out.equals(payload)) throw new Error(`ec:${k}+${m} size ${size}: loss of [${lost.join(',')}] reconstructed wrong bytes`);
      if (lost.length > 0) {
        const rebuilt = await codec.rebuildFragments(survivors, size, lost);
        rebuilt.forEach((f, j) => {
          if (!f.equals(fragments[lost[j]!]!)) throw new Error(`ec:${k}+${m} size ${size}: loss of [${lost.join(',')}]: rebuilt fragment ${lost[j]} differs`);
        });
      }
    }
  });

  test('m + 1 losses give TW_ERASURE_TOO_FEW_FRAGMENTS, on reconstruct and on rebuild', async () => {
    const payload = bytesOf(1000, 5);
    const fragments = await codec.encode(payload);
    for (const lost of lossPatterns(n, m + 1).filter((l) => l.length === m + 1).slice(0, 40)) {
      const survivors = fragments.map((f, i) => (lost.includes(i) ? undefined : f));
      await expect(codec.reconstruct(survivors, 1000)).rejects.toMatchObject({ code: 'TW_ERASURE_TOO_FEW_FRAGMENTS' });
      await expect(codec.rebuildFragments(survivors, 1000, lost)).rejects.toMatchObject({ code: 'TW_ERASURE_TOO_FEW_FRAGMENTS' });
    }
  });

  test('data fragments are the zero-padded payload split in order; parity is the Cauchy matrix product', async () => {
    const size = 13 * k + 5;
    const payload = bytesOf(size, 99 + k);
    const fragments = await codec.encode(payload);
    const shard = codec.fragmentBytes(size);
    const padded = Buffer.concat([payload, Buffer.alloc(shard * k - size)]);
    for (let i = 0; i < k; i++) expect(fragments[i]!.equals(padded.subarray(i * shard, (i + 1) * shard))).toBe(true);
    for (let p = 0; p < m; p++) expect(fragments[k + p]!.equals(referenceParity(k, m, fragments.slice(0, k), p))).toBe(true);
  });

  test('reconstructs into a caller buffer and writes nothing past the payload', async () => {
    const size = 5000 + k; // the last data fragment is cut by the payload's end
    const payload = bytesOf(size, 77);
    const fragments = await codec.encode(payload);
    // Lose the first m fragments, including the tail data fragment when m reaches it.
    const lost = [...Array.from({ length: m - 1 }, (_, i) => i), k - 1];
    const survivors = fragments.map((f, i) => (lost.includes(i) ? undefined : f));
    for (const destSize of [size, codec.fragmentBytes(size) * k + 16]) {
      const dest = Buffer.alloc(destSize, 0xaa);
      const out = await codec.reconstruct(survivors, size, { dest });
      expect(out.equals(payload)).toBe(true);
      expect(out.buffer).toBe(dest.buffer);
      expect(out.byteOffset).toBe(dest.byteOffset);
      expect(dest.subarray(size).every((b) => b === 0xaa)).toBe(true);
    }
  });
});

test('surviving data fragments read straight into their place in the destination decode in place', async () => {
  const codec = createIsalCodec({ kind: 'ec', k: 6, m: 3 });
  const shard = codec.fragmentBytes(6 * 4096);
  const payload = bytesOf(6 * shard, 11);
  const fragments = await codec.encode(payload);
  const dest = Buffer.alloc(6 * shard);
  const lost = [1, 4, 7];
  // As a gateway would: each surviving data fragment received into its slot of `dest`.
  const survivors = fragments.map((f, i) => {
    if (lost.includes(i)) return undefined;
    if (i >= 6) return f;
    f.copy(dest, i * shard);
    return dest.subarray(i * shard, (i + 1) * shard);
  });
  const out = await codec.reconstruct(survivors, payload.length, { dest });
  expect(out.equals(payload)).toBe(true);
});

describe('random payloads and loss patterns (property, seeded)', () => {
  test('reconstruct(encode(x) minus up to m fragments) = x, data fragments and decoded payload match @tw/erasure (ronomon)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...POLICIES), fc.integer({ min: 0, max: 20_000 }), fc.nat(), fc.nat(), async ([k, m], size, seed, lossSeed) => {
        const isal = createIsalCodec({ kind: 'ec', k, m });
        const ronomon = createCodec({ kind: 'ec', k, m });
        const payload = bytesOf(size, seed);
        const fragments = await isal.encode(payload);
        const reference = await ronomon.encode(payload);
        expect(fragments.map((f) => f.length)).toEqual(reference.map((f) => f.length));
        for (let i = 0; i < k; i++) expect(fragments[i]!.equals(reference[i]!)).toBe(true);
        const patterns = lossPatterns(k + m, m);
        const lost = patterns[lossSeed % patterns.length]!;
        const out = await isal.reconstruct(fragments.map((f, i) => (lost.includes(i) ? undefined : f)), size);
        expect(out.equals(payload)).toBe(true);
        const viaRonomon = await ronomon.reconstruct(reference.map((f, i) => (lost.includes(i) ? undefined : f)), size);
        expect(out.equals(viaRonomon)).toBe(true);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });

  test('rebuildFragments returns the requested indexes in order, present or not, repeated or not', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...POLICIES), fc.integer({ min: 1, max: 5_000 }), fc.nat(), fc.nat(), fc.array(fc.nat(), { minLength: 0, maxLength: 6 }), async ([k, m], size, seed, lossSeed, picks) => {
        const codec = createIsalCodec({ kind: 'ec', k, m });
        const fragments = await codec.encode(bytesOf(size, seed));
        const patterns = lossPatterns(k + m, m);
        const lost = patterns[lossSeed % patterns.length]!;
        const indexes = picks.map((p) => p % (k + m));
        const rebuilt = await codec.rebuildFragments(fragments.map((f, i) => (lost.includes(i) ? undefined : f)), size, indexes);
        expect(rebuilt).toHaveLength(indexes.length);
        rebuilt.forEach((f, j) => expect(f.equals(fragments[indexes[j]!]!)).toBe(true));
        // Each result is its own buffer: writing one never changes another or a fragment.
        rebuilt.forEach((f) => f.fill(0xee));
        const again = await codec.rebuildFragments(fragments.map((f, i) => (lost.includes(i) ? undefined : f)), size, indexes);
        again.forEach((f, j) => expect(f.equals(fragments[indexes[j]!]!)).toBe(true));
      }),
      { seed: SEED + 1, numRuns: 100 },
    );
  });
});

describe('encodeInto (caller-owned parity)', () => {
  test('gives the fragments encode gives, reusing the same parity buffers call after call', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...POLICIES), fc.integer({ min: 0, max: 3_000 }), fc.nat(), async ([k, m], size, seed) => {
        const codec = createIsalCodec({ kind: 'ec', k, m });
        const shard = codec.fragmentBytes(size);
        const parity = Array.from({ length: m }, () => Buffer.alloc(shard, 0xcc));
        for (const s of [seed, seed + 1]) {
          const payload = bytesOf(size, s);
          const expected = await codec.encode(payload);
          const got = await codec.encodeInto(payload, parity);
          expect(got).toHaveLength(k + m);
          got.forEach((f, i) => expect(f.equals(expected[i]!)).toBe(true));
          for (let p = 0; p < m; p++) expect(got[k + p]!.buffer).toBe(parity[p]!.buffer);
        }
      }),
      { seed: SEED + 2, numRuns: 60 },
    );
  });
  test('wrong parity count or size is a coded error; parity overlapping the payload is refused', async () => {
    const codec = createIsalCodec({ kind: 'ec', k: 4, m: 2 });
    const payload = bytesOf(4096, 1);
    const shard = codec.fragmentBytes(payload.length);
    await expect(codec.encodeInto(payload, [Buffer.alloc(shard)])).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.encodeInto(payload, [Buffer.alloc(shard), Buffer.alloc(shard - 8)])).rejects.toMatchObject({ code: 'TW_ERASURE_FRAGMENT_SIZE' });
    await expect(codec.encodeInto(payload, [payload.subarray(0, shard), Buffer.alloc(shard)])).rejects.toMatchObject({ code: 'TW_ISAL_BAD_ARGUMENT' });
  });
});

describe('64 MiB blocks', () => {
  const MiB = 1024 * 1024;
  function bigPayload(size: number): Buffer {
    const payload = Buffer.allocUnsafe(size);
    for (let i = 0; i + 4 <= size; i += 4096) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
    for (let i = 4; i < size; i += 4096) payload.fill((i >>> 12) & 0xff, i, Math.min(size, i + 4092));
    return payload;
  }

  test('ec:4+2, 64 MiB, two data fragments lost: zero-copy encode, identical payload and fragments', async () => {
    const codec = createIsalCodec({ kind: 'ec', k: 4, m: 2 });
    const size = 64 * MiB;
    const payload = bigPayload(size);
    const fragments = await codec.encode(payload);
    expect(fragments[0]!.buffer).toBe(payload.buffer); // no padding needed: views of the payload
    const survivors = [undefined, fragments[1], undefined, fragments[3], fragments[4], fragments[5]];
    const out = await codec.reconstruct(survivors, size);
    expect(out.equals(payload)).toBe(true);
    const rebuilt = await codec.rebuildFragments(survivors, size, [0, 2]);
    expect(rebuilt[0]!.equals(fragments[0]!)).toBe(true);
    expect(rebuilt[1]!.equals(fragments[2]!)).toBe(true);
  });

  test('ec:10+4, 64 MiB + 5 bytes, the padded tail fragment and three others lost', async () => {
    const codec = createIsalCodec({ kind: 'ec', k: 10, m: 4 });
    const size = 64 * MiB + 5;
    const payload = bigPayload(size);
    const fragments = await codec.encode(payload);
    const lost = [0, 5, 9, 12];
    const survivors = fragments.map((f, i) => (lost.includes(i) ? undefined : f));
    const out = await codec.reconstruct(survivors, size);
    expect(out.equals(payload)).toBe(true);
    const rebuilt = await codec.rebuildFragments(survivors, size, lost);
    rebuilt.forEach((f, j) => expect(f.equals(fragments[lost[j]!]!)).toBe(true));
  });
});

describe.each<[string, Redundancy]>([
  ['replicate:3', { kind: 'replicate', n: 3 }],
  ['none', { kind: 'none' }],
])('%s (served by @tw/erasure copy codec)', (_name, redundancy) => {
  test('any one copy restores the block; none left is a coded error', async () => {
    const codec = createIsalCodec(redundancy);
    const payload = bytesOf(3333, 9);
    const fragments = await codec.encode(payload);
    expect(fragments).toHaveLength(codec.fragmentCount);
    for (let keep = 0; keep < fragments.length; keep++) {
      expect((await codec.reconstruct(fragments.map((f, i) => (i === keep ? f : undefined)), payload.length)).equals(payload)).toBe(true);
    }
    await expect(codec.reconstruct(fragments.map(() => undefined), payload.length)).rejects.toMatchObject({ code: 'TW_ERASURE_TOO_FEW_FRAGMENTS' });
  });
});

describe('bad arguments are coded errors', () => {
  const codec = createIsalCodec({ kind: 'ec', k: 4, m: 2 });
  test('policy bounds', () => {
    expect(() => createIsalCodec({ kind: 'ec', k: 17, m: 2 })).toThrow(expect.objectContaining({ code: 'TW_ERASURE_BAD_ARGUMENT' }));
    expect(() => createIsalCodec({ kind: 'ec', k: 4, m: 5 })).toThrow(expect.objectContaining({ code: 'TW_ERASURE_BAD_ARGUMENT' }));
    expect(() => createIsalCodec({ kind: 'ec', k: 2.5, m: 1 })).toThrow(expect.objectContaining({ code: 'TW_ERASURE_BAD_ARGUMENT' }));
    expect(() => createIsalCodec({ kind: 'replicate', n: 0 })).toThrow(expect.objectContaining({ code: 'TW_ERASURE_BAD_ARGUMENT' }));
  });
  test('fragment sizes, slot counts, indexes, destination, abort', async () => {
    const fragments = await codec.encode(bytesOf(100, 1));
    await expect(codec.reconstruct(fragments.slice(0, 5), 100)).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.reconstruct([fragments[0]!.subarray(1), ...fragments.slice(1)], 100)).rejects.toMatchObject({ code: 'TW_ERASURE_FRAGMENT_SIZE' });
    await expect(codec.reconstruct(fragments, -1)).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.reconstruct(fragments, 1.5)).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.rebuildFragments(fragments, 100, [6])).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.rebuildFragments(fragments, 100, [-1])).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.rebuildFragments(fragments, 100, [0.5])).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    await expect(codec.reconstruct([undefined, ...fragments.slice(1)], 100, { dest: Buffer.alloc(10) })).rejects.toMatchObject({ code: 'TW_ERASURE_BAD_ARGUMENT' });
    const ac = new AbortController();
    ac.abort();
    await expect(codec.encode(bytesOf(100, 1), ac.signal)).rejects.toMatchObject({ code: 'TW_ERASURE_ABORTED' });
    await expect(codec.reconstruct(fragments, 100, { signal: ac.signal })).rejects.toMatchObject({ code: 'TW_ERASURE_ABORTED' });
    await expect(codec.rebuildFragments(fragments, 100, [0], ac.signal)).rejects.toMatchObject({ code: 'TW_ERASURE_ABORTED' });
  });
  test('a Uint8Array that is not a Buffer works as payload and as fragments', async () => {
    const payload = new Uint8Array(bytesOf(1001, 3));
    const fragments = (await codec.encode(payload)).map((f) => new Uint8Array(f));
    const out = await codec.reconstruct([undefined, fragments[1], fragments[2], undefined, fragments[4], fragments[5]], 1001);
    expect(Buffer.from(payload).equals(out)).toBe(true);
  });
});
