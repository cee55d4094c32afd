/**
 * tw-gateway: the KV path for inference engines. Serves HTTP, RESP2 (redis://), LMCache's
 * lm:// and the native protocol (@tw/client) over one gateway data path (DRAM tier, erasure coding, batched commits).
 */
import { configErrors, helpText, parseArgs, parseConfig, readConfigFile, runCli, waitForStopSignal } from '@tw/config';
import { createLogger } from '@tw/observability';
import { GatewayConfigSchema, type GatewayConfig } from './config.js';
import { startGateway } from './gateway.js';

const FLAGS = [{ name: 'config', value: 'FILE', description: 'JSON config file (see apps/gateway/README.md); required' }] as const;

const USAGE = 'tw-gateway --config FILE';
const SUMMARY =
  'Token Warehouse gateway: stores and serves KV-cache blocks for inference engines over HTTP,\nRESP2 (redis://), LMCache lm:// and the native protocol (@tw/client), erasure-coded across the storage nodes the coordinators name.\nSIGTERM finishes open requests, flushes accepted writes and exits.';

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (args.flags.get('help')) {
    process.stdout.write(helpText(USAGE, SUMMARY, FLAGS));
    return 0;
  }
  if (args.positionals.length > 0) throw configErrors.create('TW_CLI_USAGE', `unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const file = args.flags.get('config');
  if (typeof file !== 'string') throw configErrors.create('TW_CLI_USAGE', 'give --config FILE; see --help');
  const config = parseConfig(GatewayConfigSchema, readConfigFile(file), `config file ${file}`) as GatewayConfig;

  const log = createLogger({ role: 'gateway', id: config.gatewayId, level: config.logLevel });
  const gw = await startGateway(config, { logger: log });
  await waitForStopSignal(log);
  await gw.stop();
  log.flush();
  return 0;
}

runCli('tw-gateway', main, ['TW_GATEWAY_APP_CONFIG']);
