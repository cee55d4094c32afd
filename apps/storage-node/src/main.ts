/**
 * tw-storage-node: serves fragment put / get / delete / stat / list on the data transport from
 * LevelDB-indexed extents on local disk.
 */
import { configErrors, helpText, parseArgs, parseConfig, readConfigFile, runCli, waitForStopSignal } from '@tw/config';
import { createLogger } from '@tw/observability';
import { StorageNodeConfigSchema, type StorageNodeConfig } from './config.js';
import { startStorageNode } from './storage-node.js';

const FLAGS = [
  { name: 'config', value: 'FILE', description: 'JSON config file (see docs/storage-node.md); required unless --data-dir is given' },
  { name: 'data-dir', value: 'DIR', description: 'data folder; overrides the config file (with defaults for everything else)' },
  { name: 'listen', value: 'HOST:PORT', description: 'data-plane address; overrides the config file' },
  { name: 'admin', value: 'HOST:PORT', description: 'health / metrics address; overrides the config file' },
  { name: 'rebuild-index', description: 'drop the LevelDB index and rebuild it by scanning every extent, then serve' },
] as const;

const USAGE = 'tw-storage-node --config FILE [--rebuild-index]';
const SUMMARY = 'Token Warehouse storage node: stores erasure-coded KV-cache fragments in append-only extents\nindexed by LevelDB, and serves them over the data-plane transport. SIGTERM finishes in-flight\nrequests and exits.';

function splitHostPort(flag: string, value: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw configErrors.create('TW_CLI_USAGE', `--${flag} wants HOST:PORT, got ${JSON.stringify(value)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  if (args.flags.get('help')) {
    process.stdout.write(helpText(USAGE, SUMMARY, FLAGS));
    return 0;
  }
  if (args.positionals.length > 0) throw configErrors.create('TW_CLI_USAGE', `unexpected argument ${JSON.stringify(args.positionals[0])}`);
  const file = args.flags.get('config');
  const dataDir = args.flags.get('data-dir');
  if (typeof file !== 'string' && typeof dataDir !== 'string') throw configErrors.create('TW_CLI_USAGE', 'give --config FILE (or --data-dir DIR); see --help');
  let raw: Record<string, unknown> = typeof file === 'string' ? readConfigFile(file) : {};
  if (typeof dataDir === 'string') raw = { ...raw, dataDir };
  const listen = args.flags.get('listen');
  if (typeof listen === 'string') raw = { ...raw, listen: splitHostPort('listen', listen) };
  const adminFlag = args.flags.get('admin');
  if (typeof adminFlag === 'string') raw = { ...raw, admin: splitHostPort('admin', adminFlag) };
  const config = parseConfig(StorageNodeConfigSchema, raw, typeof file === 'string' ? `config file ${file}` : 'config') as StorageNodeConfig;

  const log = createLogger({ role: 'storage-node', id: config.nodeId, level: config.logLevel });
  const node = await startStorageNode(config, { logger: log, rebuildIndex: args.flags.get('rebuild-index') === true });
  await waitForStopSignal(log);
  await node.stop();
  log.flush();
  return 0;
}

runCli('tw-storage-node', main);
