export { EntryType, MemoryStorage, type ConfState, type Entry, type HardState, type Snapshot, type Storage } from '@tw/raft';
export { isTwError } from '@tw/errors';
