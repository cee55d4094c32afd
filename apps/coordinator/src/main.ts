/** tw-coordinator: one member of the Raft group that holds the block map and the cluster map. */
import { configErrors, helpText, parseArgs, parseConfig, readConfigFile, runCli, waitForStopSignal } from '@tw/config';
import { createLogger } from '@tw/observability';
import { type CoordinatorConfig, CoordinatorConfigSchema } from './config.js';
import { startCoordinator } from './coordinator.js';

const FLAGS = [{ name: 'config', value: 'FILE', description: 'JSON config file (see docs/coordinator.md); required' }] as const;
const USAGE = 'tw-coordinator --config FILE';
const SUMMARY =
  'Token Warehouse coordinator: one replica of the Raft group that holds the block map, the cluster\nmap and the placement-group map, serving lookups and commits over gRPC. SIGTERM stops it cleanly.';

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (args.flags.get('help')) {
    process.stdout.write(helpText(USAGE, SUMMARY, FLAGS));
    return 0;
  }
  if (args.positionals.length > 0) throw configErrors.create('TW_CLI_USAGE', `unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const file = args.flags.get('config');
  if (typeof file !== 'string') throw configErrors.create('TW_CLI_USAGE', 'give --config FILE; see --help');
  const config = parseConfig(CoordinatorConfigSchema, readConfigFile(file), `config file ${file}`) as CoordinatorConfig;
  const log = createLogger({ role: 'coordinator', id: String(config.id), level: config.logLevel });
  const coordinator = await startCoordinator(config, log);
  await waitForStopSignal(log);
  await coordinator.stop();
  log.flush();
  return 0;
}

runCli('tw-coordinator', main, ['TW_COORDINATOR_CONFIG']);
