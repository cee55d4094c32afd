import { describe, expect, it } from 'vitest';
import { Inflights, Progress } from '../src/progress.js';
import { ProgressState } from '../src/index.js';

describe('flow control', () => {
  it('inflights are bounded by count and by bytes, and freed by acknowledgement', () => {
    const byCount = new Inflights(3, 0);
    byCount.add(1, 10);
    byCount.add(2, 10);
    expect(byCount.full()).toBe(false);
    byCount.add(3, 10);
    expect(byCount.full()).toBe(true);
    expect(() => byCount.add(4, 10)).toThrow(/full inflights/);
    byCount.freeLE(2);
    expect(byCount.count).toBe(1);
    expect(byCount.bytes).toBe(10);
    const byBytes = new Inflights(100, 25);
    byBytes.add(1, 10);
    byBytes.add(2, 10);
    expect(byBytes.full()).toBe(false);
    byBytes.add(3, 10);
    expect(byBytes.full()).toBe(true);
    byBytes.freeLE(1);
    expect(byBytes.full()).toBe(false);
  });

  it('a replicating follower pauses when its inflight window is full', () => {
    const pr = new Progress(1, false, 2, 0);
    pr.becomeReplicate();
    pr.sentEntries(1, 5, 1);
    pr.sentEntries(1, 5, 2);
    expect(pr.isPaused()).toBe(true);
    expect(pr.next).toBe(3);
    pr.maybeUpdate(1);
    pr.inflights.freeLE(1);
    expect(pr.isPaused()).toBe(false);
  });

  it('a probing follower sends one append at a time, and stale rejections are ignored', () => {
    const pr = new Progress(6, false, 4, 0);
    expect(pr.state).toBe(ProgressState.Probe);
    pr.sentEntries(2, 10, 7);
    expect(pr.isPaused()).toBe(true);
    // A rejection of an index other than next-1 is stale.
    expect(pr.maybeDecrTo(3, 2)).toBe(false);
    expect(pr.maybeDecrTo(5, 2)).toBe(true);
    expect(pr.next).toBe(3);
    expect(pr.isPaused()).toBe(false);
  });

  it('a follower receiving a snapshot is paused until it reports back', () => {
    const pr = new Progress(1, false, 4, 0);
    pr.becomeSnapshot(10);
    expect(pr.isPaused()).toBe(true);
    pr.becomeProbe();
    expect(pr.next).toBe(11);
  });
});
