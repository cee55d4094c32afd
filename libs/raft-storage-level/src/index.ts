export { LevelRaftStorage, type LevelRaftStorageOptions, type RaftLogUpdate } from './level-storage.js';
export { raftStorageErrors } from './errors.js';
export * as limits from './limits.js';
