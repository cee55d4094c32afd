import { isTwError } from '@tw/errors';
import { join } from 'node:path';
import { type LocalCluster, ManagedProcess, startLocalCluster } from '@tw/twctl';

export interface WarehouseOptions {
  readonly dataDir: string;
  /** First port; default: a random one in 20000-31000 (below the ephemeral range), retried when taken. */
  readonly basePort?: number;
  readonly coordinators?: number;
  readonly storageNodes?: number;
  readonly redundancy?: string;
  /** The gateway's DRAM tier (twctl's default, 32 MiB, sends big reads to the storage nodes). */
  readonly gatewayDramTierBytes?: number;
  readonly print?: (line: string) => void;
}

/**
 * The embedded cluster of `npm start` (twctl's startLocalCluster: coordinators, storage nodes
 * under ec:4+2, one gateway), as child processes on loopback.
 */
export async function startWarehouse(o: WarehouseOptions): Promise<LocalCluster & { gatewayHttp: string }> {
  for (let attempt = 0; ; attempt++) {
    const basePort = o.basePort ?? 20_000 + 10 * Math.floor(Math.random() * 1_100);
    try {
      const c = await startLocalCluster({
        dataDir: o.dataDir,
        basePort,
        coordinators: o.coordinators ?? 1,
        storageNodes: o.storageNodes ?? 6,
        redundancy: o.redundancy ?? 'ec:4+2',
        withGateway: true,
        print: o.print ?? (() => undefined),
        ...(o.gatewayDramTierBytes === undefined ? {} : { gatewayDramTierBytes: o.gatewayDramTierBytes }),
      });
      if (c.gatewayHttp === undefined) throw new Error('the local cluster started without a gateway');
      return c as LocalCluster & { gatewayHttp: string };
    } catch (err) {
      if (o.basePort === undefined && attempt < 5 && isTwError(err, 'TW_LOCAL_PORT_IN_USE')) continue;
      throw err;
    }
  }
}

/** True when a gateway answers /readyz at `url`. */
export async function gatewayReady(url: string): Promise<boolean> {
  try {
    const r = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

/**
 * Stops the cluster's gateway and starts a new one on the same config: its DRAM tier and record
 * cache are empty, so the next reads come from the storage nodes (a cold read). Returns the new
 * process; the caller stops it (the cluster's stop() knows only the first gateway).
 */
export async function restartGateway(cluster: LocalCluster, dataDir: string, running: ManagedProcess | undefined = cluster.gateway): Promise<ManagedProcess> {
  if (running === undefined || cluster.gatewayHttp === undefined) throw new Error('the cluster has no gateway');
  await running.stop();
  // The cluster's stop() stops only the gateway it started; make sure that one is gone too.
  await cluster.gateway?.stop();
  const gw = new ManagedProcess('gateway', 'gateway', ['--config', join(dataDir, 'config', 'gateway.json')], join(dataDir, 'logs', 'gateway.log'));
  try {
    await gw.waitFor((l) => l['msg'] === 'gateway started', 90_000);
    const t0 = Date.now();
    while (!(await gatewayReady(cluster.gatewayHttp))) {
      if (Date.now() - t0 > 60_000) throw new Error('the restarted gateway never became ready');
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await gw.stop();
    throw err;
  }
  return gw;
}

/**
 * restartGateway, then one read of an unrelated block written before the restart: the new
 * gateway's code paths and connections to the storage nodes are warm, its DRAM tier and record
 * cache hold nothing of the caller's blocks. "Cold" then means the data, not a process that has
 * served no request yet (a gateway in production runs for days).
 */
export async function restartGatewayWarm(
  cluster: LocalCluster,
  dataDir: string,
  warehouse: { put(key: string, v: Uint8Array, o: { mode: 'sync' }): Promise<void>; get(key: string): Promise<Buffer | undefined>; delete(key: string): Promise<boolean> },
  running: ManagedProcess | undefined = cluster.gateway,
): Promise<ManagedProcess> {
  const key = `tw-warmup-${process.pid}-${Date.now()}`;
  await warehouse.put(key, Buffer.alloc(4 << 20, 0x5a), { mode: 'sync' });
  const gw = await restartGateway(cluster, dataDir, running);
  const v = await warehouse.get(key);
  if (v === undefined || v.length !== 4 << 20) throw new Error('the warm-up block did not come back after the gateway restart');
  await warehouse.delete(key);
  return gw;
}
