/**
 * npm run demo:ttft [-- --tokens N --block-tokens B --threads T --gateway URL --native HOST:PORT]
 *
 * Reuses a running warehouse (--gateway, TW_GATEWAY_URL, or `npm start`'s gateway on
 * 127.0.0.1:7700, whose native protocol is on 7703; blocks travel over the native protocol when
 * its address is known, else over HTTP) or starts the embedded cluster of `npm start` (twctl's startLocalCluster) in a
 * temporary folder, then tells the time-to-first-token story (ttft-story.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gatewayReady, startWarehouse } from './cluster.js';
import { ttftStory } from './ttft-story.js';

const print = (s: string): void => void process.stdout.write(`${s}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tokens: { type: 'string', default: '4097' },
      'block-tokens': { type: 'string', default: '256' },
      threads: { type: 'string', default: '2' },
      gateway: { type: 'string' },
      native: { type: 'string' },
    },
  });
  let url = values.gateway ?? process.env['TW_GATEWAY_URL'];
  let native = values.native;
  if (url === undefined && (await gatewayReady('http://127.0.0.1:7700'))) {
    url = 'http://127.0.0.1:7700';
    native ??= '127.0.0.1:7703';
  }
  const story = { tokens: Number(values.tokens), blockTokens: Number(values['block-tokens']), threads: Number(values.threads), print };
  if (url !== undefined) {
    if (!(await gatewayReady(url))) throw new Error(`no ready gateway at ${url}`);
    print(`warehouse: reusing the gateway at ${url}`);
    const r = await ttftStory({ ...story, gatewayUrl: url, ...(native === undefined ? {} : { gatewayNative: native }) });
    if (!r.identical || r.restoredTokens === 0) process.exitCode = 1;
    return;
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'tw-demo-ttft-'));
  print('warehouse: starting the embedded cluster (3 coordinators, 6 storage nodes, ec:4+2, 1 gateway)...');
  const cluster = await startWarehouse({ dataDir, coordinators: 3, storageNodes: 6, redundancy: 'ec:4+2', print });
  try {
    const r = await ttftStory({ ...story, gatewayUrl: cluster.gatewayHttp, gatewayNative: cluster.gatewayNative!, restartable: { cluster, dataDir } });
    if (!r.identical || r.restoredTokens === 0) process.exitCode = 1;
  } finally {
    await cluster.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo:ttft failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
