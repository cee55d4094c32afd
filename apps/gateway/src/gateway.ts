import { type Gateway, type GatewayCoordinator, createGateway } from '@tw/gateway-core';
import type { Logger } from '@tw/observability';
import { CoordinatorClient } from '@tw/rpc';
import type { Transport } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import { AccessPolicy } from './access.js';
import type { GatewayConfig } from './config.js';
import { gatewayAppErrors } from './errors.js';
import { type HttpFrontend, startHttpFrontend } from './http-frontend.js';
import { type LmFrontend, startLmFrontend } from './lm-frontend.js';
import { COORDINATOR_TOKEN_CHECK_ATTEMPTS, COORDINATOR_TOKEN_CHECK_DEADLINE_MS } from './limits.js';
import { createGatewayMetrics } from './metrics.js';
import { NamespaceTokenCache, verifyWithCoordinators } from './namespace-tokens.js';
import { type NativeFrontend, startNativeFrontend } from './native-frontend.js';
import { type RespFrontend, startRespFrontend } from './resp-frontend.js';

export interface RunningGateway {
  readonly gateway: Gateway;
  /** `http://host:port` of the HTTP API (with /healthz, /readyz, /metrics), when configured. */
  readonly httpUrl: string | undefined;
  /** `host:port` of the RESP front-end, when configured. */
  readonly respAddress: string | undefined;
  /** `host:port` of the lm:// front-end, when configured. */
  readonly lmcacheAddress: string | undefined;
  /** `host:port` of the native front-end (@tw/client), when configured. */
  readonly nativeAddress: string | undefined;
  /** Request payload bytes the native front-end holds now (0 when idle, or without it). */
  readonly nativeInflightBytes: number;
  /** True once the first cluster map arrived. */
  readonly ready: boolean;
  /** Stops the front-ends (open requests get shutdownTimeoutMs), flushes the gateway, closes. */
  stop(): Promise<void>;
}

/** Wires the coordinator client, the data transport, the gateway data path and its front-ends. */
export async function startGateway(config: GatewayConfig, options: { logger: Logger }): Promise<RunningGateway> {
  const log = options.logger;
  if (config.http === undefined && config.resp === undefined && config.lmcache === undefined && config.native === undefined) {
    throw gatewayAppErrors.create('TW_GATEWAY_APP_CONFIG', 'no front-end configured: give at least one of http, resp, lmcache, native');
  }
  const lmNamespace = config.lmcache?.namespace ?? config.defaultNamespace;
  const metrics = createGatewayMetrics();
  const coordinator = new CoordinatorClient(config.coordinators);
  // Token checks get a client of their own with a short deadline: during an outage a request
  // with an unknown token fails in seconds, not after the data path's long retry schedule.
  const tokenCoordinator = config.coordinatorTokens.enabled
    ? new CoordinatorClient(config.coordinators, { deadlineMs: COORDINATOR_TOKEN_CHECK_DEADLINE_MS, attemptsMax: COORDINATOR_TOKEN_CHECK_ATTEMPTS })
    : undefined;
  const tokens =
    tokenCoordinator === undefined
      ? undefined
      : new NamespaceTokenCache(verifyWithCoordinators(tokenCoordinator), { ttlMs: config.coordinatorTokens.cacheMs, entriesMax: config.coordinatorTokens.cacheEntries });
  const access = new AccessPolicy(config, tokens);
  const transport: Transport = tcpTransport()({});
  const gateway = createGateway(
    {
      gatewayId: config.gatewayId,
      dramTierBytes: config.dramTierBytes,
      ...(config.inflightBytesMax === undefined ? {} : { inflightBytesMax: config.inflightBytesMax }),
    },
    { transport, coordinator: withNamespaceTokens(coordinator, access), hooks: metrics.hooks },
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
  let native: NativeFrontend | undefined;
  const closeAll = async (graceMs: number): Promise<void> => {
    readyAbort.abort();
    await Promise.all([
      http?.close().catch(() => undefined),
      resp?.close(graceMs).catch(() => undefined),
      lm?.close(graceMs).catch(() => undefined),
      native?.close(graceMs).catch(() => undefined),
    ]);
    await gateway.close().catch((err: unknown) => log.warn({ err }, 'gateway close failed'));
    await transport.close().catch(() => undefined);
    coordinator.close();
    tokenCoordinator?.close();
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
    if (config.native !== undefined) {
      native = await startNativeFrontend({ ...config.native, gateway, access, putMode: config.putMode, metrics, logger: log });
      log.info({ address: native.address }, 'native front-end listening');
    }
  } catch (err) {
    await closeAll(0);
    throw err;
  }
  log.info({ gatewayId: config.gatewayId, http: http?.url, resp: resp?.address, lmcache: lm?.address, native: native?.address, coordinators: config.coordinators, putMode: config.putMode }, 'gateway started');
  let stopped: Promise<void> | undefined;
  return {
    gateway,
    httpUrl: http?.url,
    respAddress: resp?.address,
    lmcacheAddress: lm?.address,
    nativeAddress: native?.address,
    get nativeInflightBytes() {
      return native?.inflightBytes ?? 0;
    },
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

/**
 * The gateway data path's coordinator calls, with the namespace's token filled in: the
 * coordinators check a namespace's token on every lookup, commit and delete, and the data path
 * itself knows none. The token is one the AccessPolicy verified (a client presented it) or the
 * gateway config's.
 */
function withNamespaceTokens(coordinator: CoordinatorClient, access: AccessPolicy): GatewayCoordinator {
  const call: CoordinatorClient['call'] = (method, request, options) => {
    const r = request as { namespace?: unknown; token?: unknown };
    if (r.token !== '' || typeof r.namespace !== 'string') return coordinator.call(method, request, options);
    const token = access.tokenFor(r.namespace);
    return coordinator.call(method, token === '' ? request : { ...request, token }, options);
  };
  // Every other method (and any the data path adds later) goes to the client as it is.
  return new Proxy(coordinator, {
    get(target, property) {
      if (property === 'call') return call;
      const v: unknown = Reflect.get(target, property, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
