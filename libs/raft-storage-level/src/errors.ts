import { defineErrors } from '@tw/errors';

export const raftStorageErrors = defineErrors('@tw/raft-storage-level', {
  TW_RAFT_STORAGE_IO: { description: 'The LevelDB raft log could not be read or written (disk error, full disk, permissions). The node must stop: its in-memory view may be ahead of the disk.' },
  TW_RAFT_STORAGE_CORRUPT: { description: 'The raft log on disk does not decode or is not contiguous. Restore the node from a peer (remove it and add it back) rather than trusting its state.' },
  TW_RAFT_STORAGE_CLOSED: { description: 'The raft log storage was used after close().' },
  TW_RAFT_STORAGE_TOO_LARGE: { description: 'An entry or snapshot exceeds the size limits of the raft log (limits.ts).' },
  TW_RAFT_STORAGE_QUEUE_FULL: { description: 'Too many raft log writes are queued: the caller is not awaiting them.', retryable: true },
  TW_RAFT_STORAGE_ABORTED: { description: 'A raft log write was aborted by its AbortSignal before it started.', retryable: true },
});
