import { decodeConfChange } from './conf-change.js';
import { EntryType, type Entry, type HardState, type Message, type Ready, type Snapshot, type SoftState } from './types.js';

/** Printable form of bytes: the text if it is printable ASCII, else hex. */
export function describeBytes(b: Uint8Array): string {
  let printable = true;
  for (const c of b) if (c < 0x20 || c > 0x7e) printable = false;
  if (printable) return JSON.stringify(String.fromCharCode(...b));
  return `0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`;
}

export function describeEntry(e: Entry): string {
  if (e.type === EntryType.ConfChange) {
    const cc = decodeConfChange(e.data);
    const kind = cc.type === 'ConfChangeAddNode' ? 'v' : cc.type === 'ConfChangeAddLearnerNode' ? 'l' : 'r';
    return `${e.term}/${e.index} EntryConfChange ${kind}${cc.nodeId}`;
  }
  return `${e.term}/${e.index} EntryNormal ${describeBytes(e.data)}`;
}

export function describeSnapshot(s: Snapshot): string {
  const cs = s.metadata.confState;
  const learners = cs.learners.length > 0 ? ` learners=(${cs.learners.join(' ')})` : '';
  return `[Index:${s.metadata.index} Term:${s.metadata.term} voters=(${cs.voters.join(' ')})${learners}]`;
}

export function describeHardState(h: HardState): string {
  return `Term:${h.term} Vote:${h.vote} Commit:${h.commit}`;
}

export function describeSoftState(s: SoftState): string {
  return `Lead:${s.lead} State:${s.raftState}`;
}

/** One line per message, in the shape of etcd's DescribeMessage. */
export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${m.type} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.context !== undefined && m.context.byteLength > 0) s += ` Context:${describeBytes(m.context)}`;
  if (m.snapshot !== undefined) s += ` Snapshot: ${describeSnapshot(m.snapshot)}`;
  return s;
}

/** A multi-line description of a Ready (empty string when nothing is in it). */
export function describeReady(rd: Ready): string {
  const lines: string[] = [];
  if (rd.softState !== undefined) lines.push(describeSoftState(rd.softState));
  if (rd.hardState !== undefined) lines.push(`HardState ${describeHardState(rd.hardState)}`);
  if (rd.readStates.length > 0) lines.push(`ReadStates: ${rd.readStates.map((r) => `{index:${r.index} ctx:${describeBytes(r.requestCtx)}}`).join(' ')}`);
  if (rd.entries.length > 0) {
    lines.push('Entries:');
    for (const e of rd.entries) lines.push(describeEntry(e));
  }
  if (rd.snapshot !== undefined) lines.push(`Snapshot ${describeSnapshot(rd.snapshot)}`);
  if (rd.committedEntries.length > 0) {
    lines.push('CommittedEntries:');
    for (const e of rd.committedEntries) lines.push(describeEntry(e));
  }
  if (rd.messages.length > 0) {
    lines.push('Messages:');
    for (const m of rd.messages) lines.push(describeMessage(m));
  }
  return lines.join('\n');
}

