export * from './transport.js';
export * from './errors.js';
export * from './limits.js';
export * from './wire.js';
