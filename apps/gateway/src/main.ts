/**
 * tw-gateway: the KV path for inference engines. Serves HTTP, RESP2 (redis://) and LMCache's
 * lm:// over one gateway data path (DRAM tier, erasure coding, batched commits).
 */
import { configErrors, helpText, parseArgs, parseConfig, readConfigFile } from '@tw/config';
import { isTwError } from '@tw/errors';
import { createLogger } from '@tw/observability';
import { GatewayConfigSchema, type GatewayConfig } from './config.js';
import { startGateway } from './gateway.js';

const FLAGS = [{ name: 'config', value: 'FILE', description: 'JSON config file (see apps/gateway/README.md); required' }] as const;

const USAGE = 'tw-gateway --config FILE';
const SUMMARY =
  'Token Warehouse gateway: stores and serves KV-cache blocks for inference engines over HTTP,\nRESP2 (redis://) and LMCache lm://, erasure-coded across the storage nodes the coordinators name.\nSIGTERM finishes open requests, flushes accepted writes and exits.';

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
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'signal received');
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await gw.stop();
  log.flush();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (isTwError(err)) {
      process.stderr.write(`tw-gateway: ${err.code}: ${err.message}\n`);
      if (err.cause instanceof Error && !isTwError(err.cause) && !err.message.includes(err.cause.message)) process.stderr.write(`  cause: ${err.cause.message}\n`);
      else if (isTwError(err.cause)) process.stderr.write(`  cause: ${err.cause.code}: ${err.cause.message}\n`);
      process.exitCode = err.code === 'TW_CLI_USAGE' || err.code === 'TW_CONFIG_INVALID' || err.code === 'TW_CONFIG_UNREADABLE' || err.code === 'TW_GATEWAY_APP_CONFIG' ? 2 : 1;
    } else {
      process.stderr.write(`tw-gateway: unexpected failure: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
