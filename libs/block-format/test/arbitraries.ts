import fc from 'fast-check';
import type { BlockHeader, FragmentHeader, KvLayout, Redundancy } from '../src/index.js';
import { fragmentBytes, fragmentCount } from '../src/index.js';

export const SEED = 20261128;

export const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

export const redundancyArb: fc.Arbitrary<Redundancy> = fc.oneof(
  fc.record({ kind: fc.constant('ec' as const), k: fc.integer({ min: 1, max: 16 }), m: fc.integer({ min: 1, max: 4 }) }),
  fc.record({ kind: fc.constant('replicate' as const), n: fc.integer({ min: 1, max: 8 }) }),
  fc.constant({ kind: 'none' as const }),
);

export const layoutArb: fc.Arbitrary<KvLayout> = fc.record({
  modelId: fc.string({ maxLength: 60 }),
  dtypeCode: fc.integer({ min: 0, max: 8 }),
  memoryFormatCode: fc.integer({ min: 0, max: 7 }),
  layers: fc.nat(),
  tokens: fc.nat(),
  kvHeads: fc.nat(),
  headDim: fc.nat(),
});

export const blockHeaderArb: fc.Arbitrary<BlockHeader> = fc.record(
  {
    payloadLength: fc.integer({ min: 0, max: 2 ** 40 }),
    payloadChecksum: u64,
    layout: layoutArb,
  },
  { requiredKeys: ['payloadLength', 'payloadChecksum'] },
);

export const fragmentHeaderArb: fc.Arbitrary<FragmentHeader> = fc
  .tuple(redundancyArb, fc.integer({ min: 0, max: 2 ** 31 }), u64, u64, u64, fc.nat())
  .map(([redundancy, payloadLength, keyHash, blockVersion, fragmentChecksum, idx]) => ({
    redundancy,
    payloadLength,
    fragmentIndex: idx % fragmentCount(redundancy),
    fragmentLength: fragmentBytes(redundancy, payloadLength),
    keyHash,
    blockVersion,
    fragmentChecksum,
  }));
