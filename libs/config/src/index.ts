export { configErrors } from './errors.js';
export { type ConfigProblem, parseConfig, loadConfigFile, readConfigFile } from './load-config.js';
export { type FlagSpec, type ParsedArgs, parseArgs, helpText } from './cli.js';
export { runCli, waitForStopSignal } from './run-cli.js';
