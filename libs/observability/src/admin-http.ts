import Fastify, { type FastifyInstance } from 'fastify';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import { observabilityErrors } from './errors.js';

/** A fresh Prometheus registry with the process's default metrics (CPU, memory, event loop lag). */
export function createMetricsRegistry(prefix = 'tw_'): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

export interface ReadinessReport {
  readonly ready: boolean;
  /** Why not, for the operator (e.g. "index rebuild 40 % done"). */
  readonly reason?: string;
}

export interface AdminHttpOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Ready to serve traffic (recovered, registered...)? Liveness (/healthz) needs only the process. */
  readonly readiness: () => ReadinessReport | Promise<ReadinessReport>;
  readonly logger?: Logger;
  /** Adds more routes (an app's admin API) before the server starts listening. */
  readonly extend?: (app: FastifyInstance) => void | Promise<void>;
}

export interface AdminHttp {
  readonly app: FastifyInstance;
  /** The bound address, e.g. `http://127.0.0.1:9400` (port 0 resolves to the real port). */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** `/healthz`, `/readyz` and Prometheus `/metrics` over fastify. */
export async function startAdminHttp(options: AdminHttpOptions): Promise<AdminHttp> {
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = await options.readiness();
    return reply.code(r.ready ? 200 : 503).send(r.ready ? { status: 'ready' } : { status: 'not-ready', reason: r.reason ?? 'starting' });
  });
  app.get('/metrics', async (_req, reply) => {
    const text = await options.registry.metrics();
    return reply.header('content-type', options.registry.contentType).send(text);
  });
  if (options.extend) await options.extend(app);
  try {
    await app.listen({ host: options.host, port: options.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw observabilityErrors.create('TW_ADMIN_HTTP_LISTEN', `cannot listen on ${options.host}:${options.port}: ${(err as Error).message}`, {
      cause: err,
      details: { host: options.host, port: options.port },
    });
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  options.logger?.info({ url: `http://${host}:${port}` }, 'admin http listening');
  return { app, url: `http://${host}:${port}`, port, close: () => app.close() };
}
