export { StorageNodeConfigSchema, type StorageNodeConfig } from './config.js';
export { storageNodeErrors } from './errors.js';
export { startStorageNode, type RunningStorageNode } from './storage-node.js';
