export * from './processes.js';
export * from './storage-node.js';
export * from './fragments.js';
