import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { isTwError } from '@tw/errors';
import { type Gateway, LOOKUP_KEYS_MAX } from '@tw/gateway-core';
import type { Logger } from '@tw/observability';
import type { AccessPolicy } from './access.js';
import { gatewayAppErrors } from './errors.js';
import { httpStatusOf } from './http-status.js';
import { HTTP_LOOKUP_BODY_BYTES_MAX } from './limits.js';
import type { GatewayMetrics } from './metrics.js';

export interface HttpFrontendOptions {
  readonly host: string;
  readonly port: number;
  readonly bodyBytesMax: number;
  /** Body bytes of all requests being received or served at once; beyond it requests get 503 TW_GATEWAY_APP_BUSY. */
  readonly bodyInflightBytesMax: number;
  readonly gateway: Gateway;
  readonly access: AccessPolicy;
  readonly putMode: 'async' | 'sync';
  readonly metrics: GatewayMetrics;
  readonly registry: Registry;
  readonly ready: () => boolean;
  readonly logger: Logger;
}

export interface HttpFrontend {
  /** `http://host:port` with the bound port. */
  readonly url: string;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

interface BlockParams {
  ns: string;
  key: string;
}

/** A request body: the chunks as they arrived (the gateway copies them once into its DRAM tier). */
interface Chunks {
  readonly chunks: Buffer[];
  readonly bytes: number;
}

function tokenOf(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m === null ? null : m[1]!;
}

function keyOf(raw: string): Buffer {
  // fastify has already percent-decoded the parameter once (to a string); keys are UTF-8 bytes.
  return Buffer.from(raw, 'utf8');
}

/**
 * The HTTP API over one Gateway: blocks under /v1/namespaces/:ns/blocks/:key (PUT, GET, HEAD,
 * DELETE), POST /v1/namespaces/:ns/lookup-prefix, /healthz, /readyz, /metrics. Errors are JSON
 * {code, message} with a status from httpStatusOf.
 */
export async function startHttpFrontend(o: HttpFrontendOptions): Promise<HttpFrontend> {
  const app = Fastify({ logger: false, bodyLimit: o.bodyBytesMax, exposeHeadRoutes: false, routerOptions: { maxParamLength: 4096 } });

  // Body bytes held by requests not yet answered (released when the response is sent).
  let inflightBodyBytes = 0;
  const held = new WeakMap<object, number>();
  const release = (raw: object): void => {
    const n = held.get(raw);
    if (n !== undefined) {
      inflightBodyBytes -= n;
      held.delete(raw);
    }
  };
  // The response's 'close': sent, or the connection is gone (no leak when a client aborts).
  app.addHook('onRequest', async (req, reply) => {
    reply.raw.once('close', () => release(req.raw));
  });

  // Every body arrives as its chunks, bounded by bodyBytesMax (and all bodies together by
  // bodyInflightBytesMax), with no copy.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (req, payload, done) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let finished = false;
    const hold = (n: number): boolean => {
      if (inflightBodyBytes + n > o.bodyInflightBytesMax) return false;
      inflightBodyBytes += n;
      held.set(req.raw, (held.get(req.raw) ?? 0) + n);
      return true;
    };
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > o.bodyBytesMax) {
      done(gatewayAppErrors.create('TW_GATEWAY_APP_BODY_TOO_LARGE', `body of ${declared} bytes is over the limit of ${o.bodyBytesMax}`), undefined);
      payload.resume();
      return;
    }
    payload.on('data', (c: Buffer) => {
      if (finished) return;
      if (!hold(c.length)) {
        finished = true;
        done(gatewayAppErrors.create('TW_GATEWAY_APP_BUSY', `request bodies in flight are at the limit of ${o.bodyInflightBytesMax} bytes; retry`), undefined);
        return;
      }
      bytes += c.length;
      if (bytes > o.bodyBytesMax) {
        finished = true;
        done(gatewayAppErrors.create('TW_GATEWAY_APP_BODY_TOO_LARGE', `body is over the limit of ${o.bodyBytesMax} bytes`), undefined);
        return;
      }
      chunks.push(c);
    });
    payload.on('end', () => {
      if (finished) return;
      finished = true;
      done(null, { chunks, bytes } satisfies Chunks);
    });
    payload.on('error', (err) => {
      if (finished) return;
      finished = true;
      done(err, undefined);
    });
  });

  app.setErrorHandler((err, _req, reply) => {
    const status = isTwError(err) ? httpStatusOf(err) : typeof (err as { statusCode?: number }).statusCode === 'number' ? (err as { statusCode: number }).statusCode : 500;
    const code = isTwError(err) ? err.code : status === 413 ? 'TW_GATEWAY_APP_BODY_TOO_LARGE' : status < 500 ? 'TW_GATEWAY_APP_BAD_REQUEST' : 'TW_GATEWAY_INTERNAL';
    if (status >= 500) o.logger.warn({ err, code }, 'http request failed');
    void reply.code(status).send({ code, message: (err as Error).message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ code: 'TW_GATEWAY_APP_NOT_FOUND', message: `no route ${req.method} ${req.url.slice(0, 200)}` });
  });

  const authorize = (req: FastifyRequest, ns: string): Promise<void> => o.access.check(ns, tokenOf(req), req.socket.remoteAddress);
  const counted = <T>(op: string, fn: (req: FastifyRequest<{ Params: BlockParams }>, reply: FastifyReply) => Promise<T>) => {
    return async (req: FastifyRequest<{ Params: BlockParams }>, reply: FastifyReply): Promise<T> => {
      try {
        const r = await fn(req, reply);
        o.metrics.request('http', op, String(reply.statusCode));
        return r;
      } catch (err) {
        o.metrics.request('http', op, isTwError(err) ? err.code : 'error');
        throw err;
      }
    };
  };
  const signalOf = (req: FastifyRequest): AbortSignal => {
    const ac = new AbortController();
    req.raw.once('close', () => {
      if (!req.raw.complete) ac.abort();
    });
    return ac.signal;
  };

  const blockPath = '/v1/namespaces/:ns/blocks/:key';
  app.put<{ Params: BlockParams }>(
    blockPath,
    counted('put', async (req, reply) => {
      await authorize(req, req.params.ns);
      const body = req.body as Chunks | undefined;
      if (body === undefined || body === null || !Array.isArray(body.chunks)) throw gatewayAppErrors.create('TW_GATEWAY_APP_BAD_REQUEST', 'PUT needs a body (application/octet-stream)');
      const mode = (req.query as Record<string, unknown>)['mode'] === 'sync' ? 'sync' : o.putMode;
      const r = await o.gateway.put(req.params.ns, keyOf(req.params.key), body.chunks, { mode, signal: signalOf(req) });
      return reply.code(mode === 'sync' ? 201 : 202).send({ version: r.version.toString(), bytes: body.bytes, committed: mode === 'sync' });
    }),
  );
  app.get<{ Params: BlockParams }>(
    blockPath,
    counted('get', async (req, reply) => {
      await authorize(req, req.params.ns);
      const v = await o.gateway.get(req.params.ns, keyOf(req.params.key), { signal: signalOf(req) });
      if (v === undefined) throw gatewayAppErrors.create('TW_GATEWAY_APP_NOT_FOUND', 'no such key');
      return reply.code(200).header('content-type', 'application/octet-stream').send(v);
    }),
  );
  app.head<{ Params: BlockParams }>(
    blockPath,
    counted('head', async (req, reply) => {
      await authorize(req, req.params.ns);
      const r = await o.gateway.lookupPrefix(req.params.ns, [keyOf(req.params.key)], { signal: signalOf(req) });
      return reply.code(r.hits === 1 ? 200 : 404).send();
    }),
  );
  app.delete<{ Params: BlockParams }>(
    blockPath,
    counted('delete', async (req, reply) => {
      await authorize(req, req.params.ns);
      const deleted = await o.gateway.delete(req.params.ns, keyOf(req.params.key), { signal: signalOf(req) });
      if (!deleted) throw gatewayAppErrors.create('TW_GATEWAY_APP_NOT_FOUND', 'no such key');
      return reply.code(204).send();
    }),
  );
  app.post<{ Params: BlockParams }>(
    '/v1/namespaces/:ns/lookup-prefix',
    counted('lookup', async (req, reply) => {
      await authorize(req, req.params.ns);
      const body = req.body as Chunks | undefined;
      const { keys, prefetch } = parseLookupBody(body);
      const r = await o.gateway.lookupPrefix(req.params.ns, keys, { prefetch, signal: signalOf(req) });
      return reply.code(200).send({ hits: r.hits });
    }),
  );

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => (o.ready() ? reply.code(200).send({ status: 'ready' }) : reply.code(503).send({ status: 'not-ready', reason: 'no cluster map yet' })));
  app.get('/metrics', async (_req, reply) => reply.header('content-type', o.registry.contentType).send(await o.registry.metrics()));

  try {
    await app.listen({ host: o.host, port: o.port });
  } catch (err) {
    await app.close().catch(() => undefined);
    throw gatewayAppErrors.create('TW_GATEWAY_APP_START', `http: cannot listen on ${o.host}:${o.port}: ${(err as Error).message}`, { cause: err });
  }
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : o.port;
  const h = o.host.includes(':') ? `[${o.host}]` : o.host;
  return { url: `http://${h}:${boundPort}`, app, close: () => app.close() };
}

/** `{keys: [string...], encoding?: 'utf8' | 'base64', prefetch?: boolean}` from the body chunks. */
export function parseLookupBody(body: Chunks | undefined): { keys: Buffer[]; prefetch: boolean } {
  const bad = (why: string) => gatewayAppErrors.create('TW_GATEWAY_APP_BAD_REQUEST', `lookup-prefix body: ${why}`);
  if (body === undefined || body === null || !Array.isArray(body.chunks)) throw bad('missing; send JSON {"keys": [...]}');
  if (body.bytes > HTTP_LOOKUP_BODY_BYTES_MAX) throw gatewayAppErrors.create('TW_GATEWAY_APP_BODY_TOO_LARGE', `lookup-prefix body is over ${HTTP_LOOKUP_BODY_BYTES_MAX} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(body.chunks, body.bytes).toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('not a JSON object');
  const o = json as Record<string, unknown>;
  const encoding = o['encoding'] ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64') throw bad('encoding must be "utf8" or "base64"');
  const rawKeys = o['keys'];
  if (!Array.isArray(rawKeys)) throw bad('keys must be an array of strings');
  if (rawKeys.length > LOOKUP_KEYS_MAX) throw bad(`more than ${LOOKUP_KEYS_MAX} keys`);
  const keys: Buffer[] = [];
  for (const k of rawKeys) {
    if (typeof k !== 'string') throw bad('keys must be an array of strings');
    if (encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(k)) throw bad('a key is not base64');
    keys.push(Buffer.from(k, encoding));
  }
  const prefetch = o['prefetch'] ?? false;
  if (typeof prefetch !== 'boolean') throw bad('prefetch must be a boolean');
  return { keys, prefetch };
}
