/**
 * Each planted bug (RaftConfig.plantedBugs, testing only) changes behaviour in exactly its
 * scenario: the scripted runs of testdata/planted-bug-old-votes.txt and figure8*.txt break a
 * safety property with the bug and keep it without.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { StateType } from '../src/index.js';
import { parseFile } from './datadriven.js';
import { InteractionEnv } from './interaction-env.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'testdata');

/** Runs a scenario file's commands, optionally removing the planted-bug flags from add-nodes. */
function run(file: string, withBug: boolean): InteractionEnv {
  const path = join(dir, file);
  readFileSync(path);
  const env = new InteractionEnv();
  for (const b of parseFile(path).blocks) {
    let cmd = b.command;
    if (!withBug && cmd.name === 'add-nodes') {
      const kv = new Map(cmd.kv);
      kv.delete('bug-old-votes');
      kv.delete('bug-commit-prev-term');
      cmd = { ...cmd, kv };
    }
    env.handle(cmd);
  }
  return env;
}

function leadersByTerm(env: InteractionEnv): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const n of env.nodes.values()) {
    if (n.raw.raft.state !== StateType.Leader) continue;
    out.set(n.raw.raft.term, [...(out.get(n.raw.raft.term) ?? []), n.id]);
  }
  return out;
}

describe('planted bugs', () => {
  it('countVotesFromOldTerms: two leaders in one term with the bug, one without', () => {
    expect(leadersByTerm(run('planted-bug-old-votes.txt', true)).get(2)).toEqual([1, 3]);
    expect(leadersByTerm(run('planted-bug-old-votes.txt', false)).get(2)).toEqual([3]);
  });

  it('commitPreviousTermByCounting: Figure 8 applies different commands at one index with the bug only', () => {
    const buggy = run('figure8-planted-bug.txt', true);
    // Node 1 applied its term-1 entry at index 2; nodes 2-5 applied node 5's empty entry there.
    expect(buggy.node(1).appliedAt).toContain(2);
    expect(buggy.node(1).applied).toContain('from-term-1');
    expect(buggy.node(3).appliedIndex).toBeGreaterThanOrEqual(2);
    expect(buggy.node(3).applied).not.toContain('from-term-1');

    const correct = run('figure8-planted-bug.txt', false);
    expect(correct.node(1).applied).not.toContain('from-term-1');
    expect(correct.node(1).appliedIndex).toBeLessThan(2);
  });
});
