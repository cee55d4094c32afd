export * from './linearizability/index.js';
export * from './sim/index.js';
export { testkitErrors } from './errors.js';
export { freePort } from './free-port.js';
