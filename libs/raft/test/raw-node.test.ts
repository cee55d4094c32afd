import { describe, expect, it } from 'vitest';
import { MemoryStorage, MessageType, RawNode, StateType, newMessage, seededRandom, type RaftConfig } from '../src/index.js';

function single(config: Partial<RaftConfig> = {}): { raw: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage({ voters: [1], learners: [] });
  const raw = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, ...config }, { storage, random: seededRandom(1) });
  return { raw, storage };
}

function handle(n: { raw: RawNode; storage: MemoryStorage }): void {
  while (n.raw.hasReady()) {
    const rd = n.raw.ready();
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    n.raw.advance();
  }
}

describe('RawNode', () => {
  it('refuses bad configuration with a coded error naming the field', () => {
    const storage = new MemoryStorage({ voters: [1], learners: [] });
    const mk = (c: Partial<RaftConfig>): unknown => new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, ...c }, { storage, random: seededRandom(1) });
    expect(() => mk({ electionTick: 1 })).toThrow(expect.objectContaining({ code: 'TW_RAFT_BAD_CONFIG', details: { field: 'electionTick' } }));
    expect(() => mk({ id: 0 })).toThrow(expect.objectContaining({ code: 'TW_RAFT_BAD_CONFIG' }));
    expect(() => mk({ readOnlyOption: 'leaseBased' })).toThrow(expect.objectContaining({ code: 'TW_RAFT_BAD_CONFIG' }));
  });

  it('drops proposals without a leader (retryable) and refuses local message types from peers', () => {
    const n = single();
    let err: unknown;
    try {
      n.raw.propose(new Uint8Array([1]));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'TW_RAFT_PROPOSAL_DROPPED', retryable: true });
    expect(() => n.raw.step(newMessage({ type: MessageType.Hup, from: 2, to: 1 }))).toThrow(expect.objectContaining({ code: 'TW_RAFT_STEP_LOCAL_MSG' }));
  });

  it('a single voter elects itself and commits at once', () => {
    const n = single();
    n.raw.campaign();
    expect(n.raw.raft.state).toBe(StateType.Leader);
    n.raw.propose(new Uint8Array([1]));
    const rd = n.raw.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2]);
    expect(() => n.raw.ready()).toThrow(/ready\(\) called twice/);
    n.storage.append(rd.entries);
    n.raw.advance();
    expect(() => n.raw.advance()).toThrow(/advance\(\) without ready\(\)/);
    expect(n.raw.status().applied).toBe(2);
  });

  it('flow control: the leader drops proposals past the uncommitted size limit', () => {
    const storage = new MemoryStorage({ voters: [1, 2, 3], learners: [] });
    const raw = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1, maxUncommittedEntriesSize: 100 }, { storage, random: seededRandom(1) });
    raw.campaign();
    // Become leader with votes from 2 (no one acknowledges appends afterwards).
    raw.step(newMessage({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
    expect(raw.raft.state).toBe(StateType.Leader);
    raw.propose(new Uint8Array(60));
    raw.propose(new Uint8Array(30));
    expect(() => raw.propose(new Uint8Array(30))).toThrow(expect.objectContaining({ code: 'TW_RAFT_PROPOSAL_DROPPED' }));
  });

  it('batches proposals made between two Readys into one MsgApp per follower', () => {
    const storage = new MemoryStorage({ voters: [1, 2, 3], learners: [] });
    const raw = new RawNode({ id: 1, electionTick: 10, heartbeatTick: 1 }, { storage, random: seededRandom(1) });
    raw.campaign();
    raw.step(newMessage({ type: MessageType.VoteResp, from: 2, to: 1, term: 1 }));
    handle({ raw, storage });
    for (const pr of [2, 3]) raw.step(newMessage({ type: MessageType.AppResp, from: pr, to: 1, term: 1, index: 1 }));
    handle({ raw, storage });
    raw.proposeBatch([new Uint8Array([1]), new Uint8Array([2])]);
    raw.propose(new Uint8Array([3]));
    const rd = raw.ready();
    const apps = rd.messages.filter((m) => m.type === MessageType.App);
    expect(apps.map((m) => [m.to, m.entries.length])).toEqual([
      [2, 3],
      [3, 3],
    ]);
  });
});
