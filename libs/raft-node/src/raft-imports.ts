export {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  type RaftConfig,
  type RandomSource,
  RawNode,
  type Ready,
  SnapshotStatus,
  type Snapshot,
  StateType,
  type Storage,
  decodeConfChange,
} from '@tw/raft';
import type { TwError } from '@tw/errors';

export function isTwErrorLike(err: unknown): err is TwError {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string';
}
