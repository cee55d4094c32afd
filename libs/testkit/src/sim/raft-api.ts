/** The parts of @tw/raft (and @tw/errors) the simulator drives, in one place. */
import { isTwError } from '@tw/errors';

export {
  EntryType, MemoryStorage, MessageType, RawNode, SnapshotStatus, StateType, decodeConfChange,
  type ConfState, type Entry, type Message, type RaftConfig, type Ready,
} from '@tw/raft';

export function isTwErrorRetryable(err: unknown): boolean {
  return isTwError(err) && err.retryable;
}
