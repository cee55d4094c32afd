import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prefixBlockKeys } from '../src/block-keys.js';
import { decodeBlock, encodeBlock } from '../src/block-value.js';
import { assembleStateFile, parseStateFile, planStateFile, sliceCells, STATE_SEQ_MAGIC, STATE_SEQ_VERSION, type StateLayout } from '../src/state-file.js';

/**
 * A reference writer of llama.cpp's sequence state file (llama_state_seq_save_file ->
 * llama_kv_cache::state_write for one sequence, cells 0..n-1 in one range), written straight from
 * llama-kv-cache.cpp, with cell c's bytes derived from (c, layer, part) so any misplaced byte shows.
 */
function referenceState(layout: StateLayout, cells: number, tokens: (c: number) => number): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const i32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    parts.push(b);
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    parts.push(b);
  };
  const fill = (n: number, tag: number) => Buffer.from(Array.from({ length: n }, (_, i) => (tag * 31 + i * 7) & 0xff));
  u32(STATE_SEQ_MAGIC);
  u32(STATE_SEQ_VERSION);
  u32(cells);
  for (let c = 0; c < cells; c++) i32(tokens(c));
  u32(1);
  u32(cells);
  for (let c = 0; c < cells; c++) {
    i32(c);
    u32(1);
    i32(0);
  }
  u32(layout.vTrans ? 1 : 0);
  u32(layout.layers.length);
  layout.layers.forEach((l, li) => {
    i32(l.kType);
    u64(l.kRowBytes);
    for (let c = 0; c < cells; c++) parts.push(fill(l.kRowBytes, c * 1000 + li * 10 + 1));
  });
  layout.layers.forEach((l, li) => {
    i32(l.vType);
    if (!layout.vTrans) {
      u64(l.vRowOrElBytes);
      for (let c = 0; c < cells; c++) parts.push(fill(l.vRowOrElBytes, c * 1000 + li * 10 + 2));
      return;
    }
    u32(l.vRowOrElBytes);
    u32(l.vRows);
    for (let j = 0; j < l.vRows; j++) for (let c = 0; c < cells; c++) parts.push(fill(l.vRowOrElBytes, c * 1000 + li * 10 + 3 + j * 100_000));
  });
  return Buffer.concat(parts);
}

const layoutArb = fc.record({
  vTrans: fc.boolean(),
  layers: fc.array(fc.record({ kType: fc.constant(1), kRowBytes: fc.integer({ min: 2, max: 24 }), vType: fc.constant(1), vRowOrElBytes: fc.integer({ min: 1, max: 4 }), vRows: fc.integer({ min: 1, max: 6 }) }), { minLength: 1, maxLength: 4 }),
}).map((l): StateLayout => ({ vTrans: l.vTrans, layers: l.layers.map((x) => (l.vTrans ? x : { ...x, vRowOrElBytes: x.vRowOrElBytes * 4, vRows: 0 })) }));

describe('state file <-> blocks', () => {
  it('blocks cut from a state of n cells reassemble into exactly the state of the first m blocks', () => {
    fc.assert(
      fc.property(layoutArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 4 }), (layout, B, m, extra) => {
        const tok = (c: number) => 1000 + c * 3;
        const full = parseStateFile(referenceState(layout, m * B + extra, tok));
        const payloads = Array.from({ length: m }, (_, b) => {
          const { parts, bytes } = encodeBlock({ fingerprint: 'fp', blockIndex: b, firstToken: b * B, cells: B, layout: full.layout }, sliceCells(full, b * B, (b + 1) * B));
          const tokens = Array.from({ length: B }, (_, i) => tok(b * B + i));
          return decodeBlock(Buffer.concat(parts, bytes), { fingerprint: 'fp', blockIndex: b, firstToken: b * B, tokens }).payload;
        });
        const rebuilt = Buffer.concat(assembleStateFile(full.layout, payloads, payloads.map(() => B)));
        expect(rebuilt.equals(referenceState(layout, m * B, tok))).toBe(true);
      }),
      { seed: 4242, numRuns: 150 },
    );
  });

  it('blocks placed one by one, in any order, by planStateFile give exactly the reference state (untransposed V)', () => {
    fc.assert(
      fc.property(layoutArb.filter((l) => !l.vTrans), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 2 ** 31 - 1 }), (layout, B, m, orderSeed) => {
        const tok = (c: number) => 7 + c * 5;
        const full = parseStateFile(referenceState(layout, m * B, tok));
        const payloads = Array.from({ length: m }, (_, b) => Buffer.concat(sliceCells(full, b * B, (b + 1) * B)));
        const plan = planStateFile(full.layout, m, B);
        // Poisoned, so a byte the plan never writes shows.
        const file = Buffer.alloc(plan.fileBytes, 0xee);
        for (const h of plan.headers) h.bytes.copy(file, h.fileOffset);
        const order = payloads.map((_, i) => i).sort((a, b) => ((a * 2654435761 + orderSeed) >>> 0) % 97 - ((b * 2654435761 + orderSeed) >>> 0) % 97);
        for (const i of order) {
          let covered = 0;
          for (const pl of plan.placeBlock(i)) {
            payloads[i]!.copy(file, pl.fileOffset, pl.payloadOffset, pl.payloadOffset + pl.bytes);
            covered += pl.bytes;
          }
          expect(covered).toBe(payloads[i]!.length);
        }
        expect(file.equals(referenceState(layout, m * B, tok))).toBe(true);
        expect(file.equals(Buffer.concat(assembleStateFile(full.layout, payloads, payloads.map(() => B))))).toBe(true);
      }),
      { seed: 4243, numRuns: 150 },
    );
    expect(() => planStateFile({ vTrans: true, layers: [{ kType: 1, kRowBytes: 8, vType: 1, vRowOrElBytes: 2, vRows: 4 }] }, 2, 2)).toThrow(/transposed/);
  });

  it('refuses state files it does not understand', () => {
    const layout: StateLayout = { vTrans: true, layers: [{ kType: 1, kRowBytes: 8, vType: 1, vRowOrElBytes: 2, vRows: 4 }] };
    const good = referenceState(layout, 6, (c) => c);
    expect(() => parseStateFile(good.subarray(0, good.length - 1))).toThrow(/accounts for|truncated/);
    const shifted = Buffer.from(good);
    shifted.writeInt32LE(5, 12 + 6 * 4 + 8); // cell 0 at position 5
    expect(() => parseStateFile(shifted)).toThrow(/cell 0 is not at position 0/);
    const magic = Buffer.from(good);
    magic[0]! ^= 1;
    expect(() => parseStateFile(magic)).toThrow(/magic/);
  });

  it('decodeBlock refuses any single flipped byte, a cut-off value, another model, another place', () => {
    const layout: StateLayout = { vTrans: false, layers: [{ kType: 1, kRowBytes: 8, vType: 1, vRowOrElBytes: 8, vRows: 0 }] };
    const s = parseStateFile(referenceState(layout, 8, (c) => 500 + c));
    const want = { fingerprint: 'fp', blockIndex: 1, firstToken: 4, tokens: [504, 505, 506, 507] };
    const { parts } = encodeBlock({ fingerprint: 'fp', blockIndex: 1, firstToken: 4, cells: 4, layout: s.layout }, sliceCells(s, 4, 8));
    const value = Buffer.concat(parts);
    expect(() => decodeBlock(value, want)).not.toThrow();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: value.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const bad = Buffer.from(value);
        bad[at]! ^= x;
        expect(() => decodeBlock(bad, want)).toThrow();
      }),
      { seed: 7, numRuns: 300 },
    );
    expect(() => decodeBlock(value.subarray(0, value.length - 1), want)).toThrow(/partial fetch/);
    expect(() => decodeBlock(value, { ...want, fingerprint: 'other' })).toThrow(/fingerprint/);
    expect(() => decodeBlock(value, { ...want, blockIndex: 2 })).toThrow(/another place/);
    expect(() => decodeBlock(value, { ...want, tokens: [504, 505, 506, 9] })).toThrow(/token 3/);
  });
});

describe('prefix-chained block keys', () => {
  it('two prompts share key i exactly when they share tokens 0..(i+1)B and the model', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 12, maxLength: 12 }), fc.integer({ min: 0, max: 11 }), fc.integer({ min: 1, max: 50 }), (prompt, at, delta) => {
        const B = 3;
        const other = [...prompt];
        other[at] = prompt[at]! + delta;
        const a = prefixBlockKeys('fp', prompt, B, 4);
        const b = prefixBlockKeys('fp', other, B, 4);
        const firstDiff = Math.floor(at / B);
        for (let i = 0; i < 4; i++) expect(a[i] === b[i]).toBe(i < firstDiff);
        const c = prefixBlockKeys('fp2', prompt, B, 4);
        for (let i = 0; i < 4; i++) expect(c[i]).not.toBe(a[i]);
      }),
      { seed: 99, numRuns: 200 },
    );
  });
});
