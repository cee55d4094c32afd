export * from './processes.js';
export * from './storage-node.js';
export * from './fragments.js';
export * from './fault-proxy.js';
export * from './coordinator-group.js';
