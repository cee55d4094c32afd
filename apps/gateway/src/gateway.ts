import { type Gateway, createGateway } from '@tw/gateway-core';
import type { Logger } from '@tw/observability';
import { CoordinatorClient } from '@tw/rpc';
import type { Transport } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import { AccessPolicy } from './access.js';
import type { GatewayConfig } from './config.js';
import { gatewayAppErrors } from './errors.js';
import { type HttpFrontend, startHttpFrontend } from './http-frontend.js';
import { type LmFrontend, startLmFrontend } from './lm-frontend.js';
import { createGatewayMetrics } from './metrics.js';
import { type RespFrontend, startRespFrontend } from './resp-frontend.js';

export interface RunningGateway {
  readonly gateway: Gateway;
  /** `http://host:port` of the HTTP API (with /healthz, /readyz, /metrics), when configured. */
  readonly httpUrl: string | undefined;
  /** `host:port` of the RESP front-end, when configured. */
  readonly respAddress: string | undefined;
  /** `host:port` of the lm:// front-end, when configured. */
  readonly lmcacheAddress: string | undefined;
  /** True once the first cluster map arrived. */
  readonly ready: boolean;
  /** Stops the front-ends (open requests get shutdownTimeoutMs), flushes the gateway, closes. */
  stop(): Promise<void>;
}

/** Wires the coordinator client, the data transport, the gateway data path and its front-ends. */
export async function startGateway(config: GatewayConfig, options: { logger: Logger }): Promise<RunningGateway> {
  const log = options.logger;
  if (config.http === undefined && config.resp === undefined && config.lmcache === undefined) {
    throw gatewayAppErrors.create('TW_GATEWAY_APP_CONFIG', 'no front-end configured: give at least one of http, resp, lmcache');
  }
  const access = new AccessPolicy(config);
  const lmNamespace = config.lmcache?.namespace ?? config.defaultNamespace;
  const metrics = createGatewayMetrics();
  const coordinator = new CoordinatorClient(config.coordinators);
  const transport: Transport = tcpTransport()({});
  const gateway = createGateway(
    {
      gatewayId: config.gatewayId,
      dramTierBytes: config.dramTierBytes,
      ...(config.inflightBytesMax === undefined ? {} : { inflightBytesMax: config.inflightBytesMax }),
    },
    { transport, coordinator, hooks: metrics.hooks },
  );
  metrics.attach(gateway);
  let ready = false;
  const readyAbort = new AbortController();
  gateway.ready(readyAbort.signal).then(
    () => {
      ready = true;
      log.info({ clusterEpoch: gateway.stats().clusterEpoch }, 'cluster map received');
    },
    () => undefined,
  );

  let http: HttpFrontend | undefined;
  let resp: RespFrontend | undefined;
  let lm: LmFrontend | undefined;
  const closeAll = async (graceMs: number): Promise<void> => {
    readyAbort.abort();
    await Promise.all([http?.close().catch(() => undefined), resp?.close(graceMs).catch(() => undefined), lm?.close(graceMs).catch(() => undefined)]);
    await gateway.close().catch((err: unknown) => log.warn({ err }, 'gateway close failed'));
    await transport.close().catch(() => undefined);
    coordinator.close();
  };
  try {
    if (config.http !== undefined) {
      http = await startHttpFrontend({
        ...config.http,
        gateway,
        access,
        putMode: config.putMode,
        metrics,
        registry: metrics.registry,
        ready: () => ready,
        logger: log,
      });
      log.info({ url: http.url }, 'http front-end listening');
    }
    if (config.resp !== undefined) {
      resp = await startRespFrontend({ ...config.resp, gateway, access, putMode: config.putMode, metrics, logger: log });
      log.info({ address: resp.address }, 'resp front-end listening');
    }
    if (config.lmcache !== undefined) {
      lm = await startLmFrontend({ ...config.lmcache, namespace: lmNamespace, gateway, putMode: config.putMode, metrics, logger: log });
      log.info({ address: lm.address, namespace: lmNamespace }, 'lm:// front-end listening');
    }
  } catch (err) {
    await closeAll(0);
    throw err;
  }
  log.info({ gatewayId: config.gatewayId, http: http?.url, resp: resp?.address, lmcache: lm?.address, coordinators: config.coordinators, putMode: config.putMode }, 'gateway started');
  let stopped: Promise<void> | undefined;
  return {
    gateway,
    httpUrl: http?.url,
    respAddress: resp?.address,
    lmcacheAddress: lm?.address,
    get ready() {
      return ready;
    },
    stop() {
      stopped ??= (async () => {
        await closeAll(config.shutdownTimeoutMs);
        log.info('stopped');
      })();
      return stopped;
    },
  };
}
