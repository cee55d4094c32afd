import { raftErrors } from './errors.js';
import { ConfChangeType, type ConfChange, type ConfState, type NodeId } from './types.js';

const typeCodes: readonly ConfChangeType[] = [ConfChangeType.AddNode, ConfChangeType.AddLearnerNode, ConfChangeType.RemoveNode];

/** Encodes a ConfChange as the data of an EntryConfChange: [u8 type][u32 id hi][u32 id lo][context]. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(9 + cc.context.byteLength);
  const view = new DataView(out.buffer);
  out[0] = typeCodes.indexOf(cc.type);
  view.setUint32(1, Math.floor(cc.nodeId / 0x1_0000_0000));
  view.setUint32(5, cc.nodeId >>> 0);
  out.set(cc.context, 9);
  return out;
}

/** Decodes the data of an EntryConfChange; throws TW_RAFT_BAD_CONF_CHANGE on malformed bytes. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.byteLength < 9) throw raftErrors.create('TW_RAFT_BAD_CONF_CHANGE', `conf change is ${data.byteLength} bytes, expected at least 9`);
  const type = typeCodes[data[0]!];
  if (type === undefined) throw raftErrors.create('TW_RAFT_BAD_CONF_CHANGE', `unknown conf change type code ${data[0]}`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const nodeId = view.getUint32(1) * 0x1_0000_0000 + view.getUint32(5);
  return { type, nodeId, context: data.subarray(9) };
}

/** A conf change with an empty context. */
export function confChange(type: ConfChangeType, nodeId: NodeId): ConfChange {
  return { type, nodeId, context: new Uint8Array(0) };
}

/** Membership equality ignoring order. */
export function confStateEquals(a: ConfState, b: ConfState): boolean {
  const same = (x: readonly number[], y: readonly number[]): boolean => {
    if (x.length !== y.length) return false;
    const sx = [...x].sort((p, q) => p - q);
    const sy = [...y].sort((p, q) => p - q);
    return sx.every((v, i) => v === sy[i]);
  };
  return same(a.voters, b.voters) && same(a.learners, b.learners);
}
