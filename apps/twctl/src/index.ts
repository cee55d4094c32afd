export { twctlErrors } from './errors.js';
export { startLocalCluster, type LocalCluster, type LocalClusterOptions } from './local-cluster.js';
export { GLIBC_TUNABLES, ManagedProcess, NODE_FLAGS, appEnv } from './processes.js';
