export { twctlErrors } from './errors.js';
export { startLocalCluster, type LocalCluster, type LocalClusterOptions } from './local-cluster.js';
export { ManagedProcess } from './processes.js';
