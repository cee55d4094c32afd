/**
 * twctl: the command line of Token Warehouse.
 *   twctl local         start a whole cluster on this machine (what `npm start` runs)
 *   twctl cluster-map   print the cluster map (nodes, states, epoch) from the coordinators
 *   twctl namespaces    list namespaces with their usage
 */
import { configErrors, helpText, parseArgs } from '@tw/config';
import { isTwError } from '@tw/errors';
import { CoordinatorClient } from '@tw/rpc';
import { runDemo } from './demo.js';
import { startLocalCluster } from './local-cluster.js';

const FLAGS = [
  { name: 'data-dir', value: 'DIR', description: 'local: where data, configs and logs live (default ./.tw-data)' },
  { name: 'base-port', value: 'PORT', description: 'local: first port of the range the cluster uses (default 7400)' },
  { name: 'storage-nodes', value: 'N', description: 'local: storage nodes (default 6)' },
  { name: 'no-demo', description: 'local: start the cluster without running the demo workload' },
  { name: 'coordinators', value: 'ADDRS', description: 'cluster-map, namespaces: comma-separated coordinator gRPC addresses (default 127.0.0.1:7401..7403)' },
  { name: 'admin-token', value: 'TOKEN', description: 'namespaces: the coordinators\' admin token, if they require one' },
] as const;

const USAGE = 'twctl <local | cluster-map | namespaces> [flags]';
const SUMMARY = [
  'Token Warehouse command line.',
  '  local        start coordinators, storage nodes and a gateway on this machine, run a demo',
  '               workload, print the endpoints, and stay up until Ctrl-C (then stop cleanly)',
  '  cluster-map  print the cluster map: epoch, storage nodes, their state and address',
  '  namespaces   list namespaces with their usage and redundancy',
].join('\n');

function int(flag: string, value: string | true | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== 'string' || !Number.isInteger(n) || n < min || n > max) throw configErrors.create('TW_CLI_USAGE', `--${flag} must be an integer in ${min}..${max}`);
  return n;
}

function coordinatorsFlag(v: string | true | undefined): string[] {
  if (typeof v === 'string') return v.split(',').map((s) => s.trim()).filter(Boolean);
  return ['127.0.0.1:7401', '127.0.0.1:7402', '127.0.0.1:7403'];
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv, FLAGS);
  const command = args.positionals[0];
  if (args.flags.get('help') || command === undefined) {
    process.stdout.write(helpText(USAGE, SUMMARY, FLAGS));
    return command === undefined && !args.flags.get('help') ? 2 : 0;
  }
  switch (command) {
    case 'local':
      return runLocal(args.flags);
    case 'cluster-map': {
      const client = new CoordinatorClient(coordinatorsFlag(args.flags.get('coordinators')), { attemptsMax: 5 });
      try {
        const map = await new Promise<import('@tw/rpc').ClusterMapMsg>((resolve, reject) => {
          const timer = setTimeout(() => reject(configErrors.create('TW_CLI_USAGE', 'no cluster map from the coordinators within 10 s')), 10_000);
          const stop = client.watchClusterMap((m) => {
            clearTimeout(timer);
            stop();
            resolve(m);
          });
        });
        process.stdout.write(`epoch ${map.epoch}, ${map.pgCount} placement groups, ${map.nodes.length} storage nodes\n`);
        for (const n of map.nodes) process.stdout.write(`  ${n.nodeId.padEnd(12)} ${n.state.padEnd(9)} ${n.dataAddress.padEnd(22)} ${n.failureDomain.join('/')}  weight ${n.weight}\n`);
      } finally {
        client.close();
      }
      return 0;
    }
    case 'namespaces': {
      const client = new CoordinatorClient(coordinatorsFlag(args.flags.get('coordinators')), { attemptsMax: 5 });
      try {
        const token = args.flags.get('admin-token');
        const res = await client.call('listNamespaces', { adminToken: typeof token === 'string' ? token : '' });
        for (const ns of res.namespaces) {
          process.stdout.write(`  ${ns.name.padEnd(20)} ${ns.redundancy.padEnd(12)} ${ns.blockCount} blocks, ${ns.usedBytes} bytes${ns.quotaBytes !== '0' ? ` of ${ns.quotaBytes}` : ''}\n`);
        }
      } finally {
        client.close();
      }
      return 0;
    }
    default:
      throw configErrors.create('TW_CLI_USAGE', `unknown command ${JSON.stringify(command)}; see --help`);
  }
}

async function runLocal(flags: ReadonlyMap<string, string | true>): Promise<number> {
  const dataDir = flags.get('data-dir');
  const print = (line: string): void => void process.stdout.write(`${line}\n`);
  const storageNodes = int('storage-nodes', flags.get('storage-nodes'), 6, 6, 32);
  print(`Token Warehouse: starting a local cluster (3 coordinators, ${storageNodes} storage nodes, ec:4+2, 1 gateway)...`);
  const cluster = await startLocalCluster({
    dataDir: typeof dataDir === 'string' ? dataDir : '.tw-data',
    basePort: int('base-port', flags.get('base-port'), 7400, 1024, 60_000),
    coordinators: 3,
    storageNodes,
    redundancy: 'ec:4+2',
    withGateway: true,
    print,
  });
  if (flags.get('no-demo') !== true && cluster.gatewayHttp !== undefined) {
    try {
      await runDemo(cluster, cluster.gatewayHttp, print);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }
  print('\nendpoints:');
  for (const e of cluster.endpoints) print(`  ${e.name.padEnd(15)} ${e.what.padEnd(18)} ${e.address}`);
  print(`\nlogs, configs and data in ${typeof dataDir === 'string' ? dataDir : '.tw-data'}/; stop with Ctrl-C`);
  await new Promise<void>((resolve) => {
    const onSignal = (): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  print('\nstopping...');
  await cluster.stop();
  print('stopped cleanly.');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (isTwError(err)) {
      process.stderr.write(`twctl: ${err.code}: ${err.message}\n`);
      process.exitCode = err.code === 'TW_CLI_USAGE' ? 2 : 1;
    } else {
      process.stderr.write(`twctl: unexpected failure: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
