import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfChangeType, confStateEquals, decodeConfChange, encodeConfChange } from '../src/index.js';

describe('conf change codec', () => {
  it('round-trips every change', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(ConfChangeType.AddNode, ConfChangeType.AddLearnerNode, ConfChangeType.RemoveNode),
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 64 }),
        (type, nodeId, context) => {
          const cc = decodeConfChange(encodeConfChange({ type, nodeId, context }));
          expect(cc.type).toBe(type);
          expect(cc.nodeId).toBe(nodeId);
          expect([...cc.context]).toEqual([...context]);
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });

  it('refuses malformed bytes with a coded error', () => {
    expect(() => decodeConfChange(new Uint8Array(3))).toThrow(expect.objectContaining({ code: 'TW_RAFT_BAD_CONF_CHANGE' }));
    const bad = encodeConfChange({ type: ConfChangeType.AddNode, nodeId: 4, context: new Uint8Array(0) });
    bad[0] = 200;
    expect(() => decodeConfChange(bad)).toThrow(expect.objectContaining({ code: 'TW_RAFT_BAD_CONF_CHANGE' }));
  });

  it('compares memberships ignoring order', () => {
    expect(confStateEquals({ voters: [3, 1, 2], learners: [4] }, { voters: [1, 2, 3], learners: [4] })).toBe(true);
    expect(confStateEquals({ voters: [1, 2], learners: [] }, { voters: [1, 2, 3], learners: [] })).toBe(false);
  });
});
