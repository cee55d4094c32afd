/** The block map's sequential model: crafted legal and illegal histories, batches projected per key. */
import { describe, expect, it } from 'vitest';
import { checkLinearizable, type Operation } from '../src/index.js';
import { blockMapModel, type BmRequest, type BmResponse } from './coordinator/block-map-model.js';

const op = (clientId: number, callAt: number, returnAt: number | undefined, input: BmRequest, output?: BmResponse): Operation<BmRequest, BmResponse> => ({
  clientId,
  callAt,
  returnAt,
  input,
  output: returnAt === undefined ? undefined : output,
});
const commit = (blocks: [string, string][]): BmRequest => ({ op: 'commit', blocks: blocks.map(([key, value]) => ({ key, value })) });
const lookup = (...keys: string[]): BmRequest => ({ op: 'lookup', keys });
const del = (...keys: string[]): BmRequest => ({ op: 'delete', keys });
const found = (...vv: [string, number][]): BmResponse => ({ op: 'lookup', count: vv.length, values: vv.map((x) => x[0]), versions: vv.map((x) => x[1]) });
const check = (h: Operation<BmRequest, BmResponse>[]) => checkLinearizable(blockMapModel, h).result;

describe('block map model', () => {
  it('accepts a batch commit read back per key, a prefix lookup and deletes', () => {
    expect(
      check([
        op(1, 0, 1, commit([['a', '1'], ['b', '2']]), { op: 'commit', versions: [1, 2] }),
        op(2, 2, 3, lookup('a', 'b', 'c'), found(['1', 1], ['2', 2])),
        op(1, 4, 5, del('a'), { op: 'delete', deleted: 1, missing: 0 }),
        op(2, 6, 7, lookup('a', 'b'), found()),
        op(2, 8, 9, lookup('b'), found(['2', 2])),
        op(1, 10, 11, del('a', 'b'), { op: 'delete', deleted: 1, missing: 1 }),
        op(1, 12, 13, del('b'), { op: 'delete', deleted: 0, missing: 1 }),
      ]),
    ).toBe('ok');
  });

  it('rejects a stale read, a wrong version, a decreasing version, a wrong delete count, an error', () => {
    const w = op(1, 0, 1, commit([['a', '1']]), { op: 'commit', versions: [5] });
    expect(check([w, op(2, 2, 3, lookup('a'), found())])).toBe('illegal');
    expect(check([w, op(2, 2, 3, lookup('a'), found(['1', 6]))])).toBe('illegal');
    expect(check([w, op(2, 2, 3, commit([['a', '2']]), { op: 'commit', versions: [4] })])).toBe('illegal');
    expect(check([w, op(2, 2, 3, del('a'), { op: 'delete', deleted: 0, missing: 1 })])).toBe('illegal');
    expect(check([w, op(2, 2, 3, lookup('a'), { op: 'error', code: 'TW_X', message: '' })])).toBe('illegal');
    // A prefix lookup that stops at `a` says `a` is absent: illegal after the commit.
    expect(check([w, op(2, 2, 3, lookup('a', 'b'), found())])).toBe('illegal');
  });

  it('lets a timed-out commit take effect or not, and learns its version from a read', () => {
    const lost = op(1, 0, undefined, commit([['a', '7'], ['b', '8']]));
    expect(check([lost, op(2, 1, 2, lookup('a'), found())])).toBe('ok');
    expect(check([lost, op(2, 1, 2, lookup('a'), found(['7', 3])), op(2, 3, 4, lookup('a'), found(['7', 3]))])).toBe('ok');
    expect(check([lost, op(2, 1, 2, lookup('a'), found(['7', 3])), op(2, 3, 4, lookup('a'), found(['7', 9]))])).toBe('illegal');
  });

  it('checks batch commits per key only (atomicity across keys is left to the digests)', () => {
    // Half a batch visible: not linearizable as a whole, but each key's history is.
    const h = [
      op(1, 0, 10, commit([['a', '1'], ['b', '2']]), { op: 'commit', versions: [1, 2] }),
      op(2, 1, 2, lookup('a'), found(['1', 1])),
      op(2, 3, 4, lookup('b'), found()),
    ];
    expect(check(h)).toBe('ok');
  });
});
