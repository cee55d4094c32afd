import { mkdir } from 'node:fs/promises';
import {
  NATIVE_DELIVER_SCATTER_BYTES_MAX,
  NATIVE_KEY_BYTES_MAX,
  NATIVE_LOOKUP_KEYS_MAX,
  NATIVE_LOOKUP_PAYLOAD_BYTES_MAX,
  NATIVE_OP_NAMES,
  NATIVE_PAYLOAD_BYTES_MAX,
  NATIVE_VALUE_BYTES_MAX,
  NativeOp,
  type NativeOpCode,
  type NativeReply,
  decodeLookupKeys,
  decodeRequest,
  decodeScatter,
  encodeReply,
  errorReplyOf,
  nativeErrors,
} from '@tw/client';
import { isTwError } from '@tw/errors';
import { ByteBudget, type Gateway } from '@tw/gateway-core';
import type { Logger } from '@tw/observability';
import type { IncomingRequest, HandlerContext, Reply, Transport, Listener } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import type { AccessPolicy } from './access.js';
import { deliverValue, isLoopback } from './deliver.js';
import { gatewayAppErrors } from './errors.js';
import { NATIVE_INFLIGHT_PER_CONNECTION_MAX } from './limits.js';
import type { GatewayMetrics } from './metrics.js';

export interface NativeFrontendOptions {
  readonly host: string;
  readonly port: number;
  /** Request payload bytes of all requests being received or served; beyond it TW_GATEWAY_APP_BUSY. */
  readonly inflightBytesMax: number;
  readonly gateway: Gateway;
  readonly access: AccessPolicy;
  readonly putMode: 'async' | 'sync';
  /** Folder DELIVER writes into (absolute, existing); absent: DELIVER is refused. */
  readonly deliveryDir?: string;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

export interface NativeFrontend {
  /** `host:port` with the bound port. */
  readonly address: string;
  readonly port: number;
  /** Request payload bytes held now (values being received or stored, key lists). */
  readonly inflightBytes: number;
  /** Stops accepting; requests in flight get `graceMs` to finish, then connections are dropped. */
  close(graceMs?: number): Promise<void>;
}

/** Payload bytes charged to the budget for one request, from its header's arrival to its reply. */
interface Hold {
  readonly bytes: number;
  released: boolean;
}

/** `host` of a `host:port` remote address (IPv6 in brackets or not). */
function hostOf(remote: string): string {
  const colon = remote.lastIndexOf(':');
  const host = colon > 0 ? remote.slice(0, colon) : remote;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * The native binary protocol (@tw/client's messages) on a transport-tcp listener of its own,
 * sized for 512 MiB values. Every request names its namespace and token and is authorized by
 * the AccessPolicy the other front-ends use. A request whose header does not decode is answered
 * with a coded error reply (the connection stays); frames that are not frames close the
 * connection with a coded error (the transport's). Request payloads are charged to a byte
 * budget as soon as their header arrives: beyond it, the request is refused with
 * TW_GATEWAY_APP_BUSY before its bytes are received.
 */
export async function startNativeFrontend(o: NativeFrontendOptions): Promise<NativeFrontend> {
  if (o.deliveryDir !== undefined) {
    try {
      await mkdir(o.deliveryDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw gatewayAppErrors.create('TW_GATEWAY_APP_START', `native: cannot create the delivery folder ${o.deliveryDir}: ${(err as Error).message}`, { cause: err });
    }
  }
  const transport: Transport = tcpTransport({
    payloadBytesMax: Math.max(NATIVE_PAYLOAD_BYTES_MAX, NATIVE_LOOKUP_PAYLOAD_BYTES_MAX),
    serverInflightPerConnectionMax: NATIVE_INFLIGHT_PER_CONNECTION_MAX,
  })({});
  const budget = new ByteBudget(o.inflightBytesMax);
  // Holds are found again by the request's header (the transport hands the handler the header
  // object it showed payloadDestination). A connection that dies before its handler runs never
  // claims its hold: the finalizer returns those bytes once the header is collected.
  const holds = new WeakMap<Buffer, Hold>();
  const release = (h: Hold): void => {
    if (h.released) return;
    h.released = true;
    budget.release(h.bytes);
  };
  const orphans = new FinalizationRegistry<Hold>(release);

  const payloadDestination = (header: Buffer, payloadBytes: number): undefined => {
    // Refuse what cannot be served before its bytes arrive: not a request that carries a
    // payload, a payload over the protocol's bounds, or no room in the budget.
    const req = decodeRequest(header);
    if (req.op === NativeOp.PUT) {
      if (payloadBytes > NATIVE_VALUE_BYTES_MAX) throw nativeErrors.create('TW_NATIVE_VALUE_TOO_LARGE', `value of ${payloadBytes} bytes is over ${NATIVE_VALUE_BYTES_MAX}`);
    } else if (req.op === NativeOp.LOOKUP_PREFIX) {
      if (payloadBytes > req.keyCount * (2 + NATIVE_KEY_BYTES_MAX)) throw nativeErrors.create('TW_NATIVE_MALFORMED', `key list of ${payloadBytes} bytes for ${req.keyCount} keys`);
    } else if (req.op === NativeOp.DELIVER) {
      if (payloadBytes !== req.scatterCount * 24 || payloadBytes > NATIVE_DELIVER_SCATTER_BYTES_MAX) throw nativeErrors.create('TW_NATIVE_MALFORMED', `scatter list of ${payloadBytes} bytes for ${req.scatterCount} entries`);
    } else {
      throw nativeErrors.create('TW_NATIVE_MALFORMED', `op ${req.op} carries no payload, got ${payloadBytes} bytes`);
    }
    if (!budget.tryAcquire(payloadBytes)) {
      throw gatewayAppErrors.create('TW_GATEWAY_APP_BUSY', `native requests in flight hold ${budget.usedBytes} of ${budget.capacityBytes} bytes; retry`, {
        details: { payloadBytes },
      });
    }
    const hold: Hold = { bytes: payloadBytes, released: false };
    holds.set(header, hold);
    orphans.register(header, hold, hold);
    return undefined; // the transport receives into a buffer of exactly this size
  };

  const serve = async (req: ReturnType<typeof decodeRequest>, payload: Buffer, signal: AbortSignal, remoteHost: string): Promise<Reply> => {
    const { namespace: ns } = req;
    switch (req.op) {
      case NativeOp.HELLO:
        return {
          header: encodeReply({ op: req.op, status: 'ok', valueBytesMax: NATIVE_VALUE_BYTES_MAX, lookupKeysMax: NATIVE_LOOKUP_KEYS_MAX, keyBytesMax: NATIVE_KEY_BYTES_MAX, deliveryDir: o.deliveryDir ?? '' }),
        };
      case NativeOp.PING:
        return { header: encodeReply({ op: req.op, status: 'ok' }) };
      case NativeOp.PUT: {
        const r = await o.gateway.put(ns, req.key, payload, { mode: req.sync ? 'sync' : o.putMode, signal, ...(req.ttlMs > 0 ? { ttlMs: req.ttlMs } : {}) });
        return { header: encodeReply({ op: req.op, status: 'ok', version: r.version }) };
      }
      case NativeOp.GET: {
        // No copies: a DRAM hit is sent from the tier's buffer, a cold read from the verified data
        // fragments' pooled buffers (gather write), given back once written.
        const v = await o.gateway.getParts(ns, req.key, { signal });
        if (v === undefined) return { header: encodeReply({ op: req.op, status: 'not_found' }) };
        return { header: encodeReply({ op: req.op, status: 'ok', valueBytes: v.sizeBytes }), payload: v.parts, onSent: v.release };
      }
      case NativeOp.EXISTS: {
        const r = await o.gateway.lookupPrefix(ns, [req.key], { signal });
        return { header: encodeReply({ op: req.op, status: 'ok', yes: r.hits === 1 }) };
      }
      case NativeOp.DELETE: {
        const deleted = await o.gateway.delete(ns, req.key, { signal });
        return { header: encodeReply({ op: req.op, status: 'ok', yes: deleted }) };
      }
      case NativeOp.DELIVER: {
        if (o.deliveryDir === undefined) throw gatewayAppErrors.create('TW_GATEWAY_APP_DELIVER_OFF', 'this gateway has no delivery folder (native.deliveryDir); use GET');
        if (!isLoopback(remoteHost)) throw gatewayAppErrors.create('TW_GATEWAY_APP_DELIVER_OFF', `DELIVER writes files on the gateway's host; ${remoteHost} is not a loopback address`);
        const scatter = decodeScatter(payload, req.scatterCount, req.tailBytes);
        const v = await o.gateway.getParts(ns, req.key, { signal });
        if (v === undefined) return { header: encodeReply({ op: req.op, status: 'not_found' }) };
        try {
          const d = await deliverValue({ dir: o.deliveryDir, file: req.file, value: v, tailBytes: req.tailBytes, scatter, signal });
          return { header: encodeReply({ op: req.op, status: 'ok', valueBytes: v.sizeBytes, tailChecksum: d.tailChecksum }), payload: d.head };
        } finally {
          v.release();
        }
      }
      case NativeOp.LOOKUP_PREFIX: {
        const keys = decodeLookupKeys(payload, req.keyCount);
        const r = await o.gateway.lookupPrefix(ns, keys, { prefetch: req.prefetch, signal });
        return { header: encodeReply({ op: req.op, status: 'ok', hits: r.hits }) };
      }
    }
  };

  const handler = async (request: IncomingRequest, ctx: HandlerContext): Promise<Reply> => {
    // Error replies name the op the client sent (when it sent one), so its decoder accepts them.
    let op: number = request.header[1] ?? 0;
    let opName = 'unknown';
    try {
      const req = decodeRequest(request.header);
      op = req.op;
      opName = NATIVE_OP_NAMES[req.op as NativeOpCode];
      if (request.payload.length > 0 && req.op !== NativeOp.PUT && req.op !== NativeOp.LOOKUP_PREFIX && req.op !== NativeOp.DELIVER) {
        throw nativeErrors.create('TW_NATIVE_MALFORMED', `op ${req.op} carries no payload`);
      }
      if (req.op !== NativeOp.PING) {
        const token = req.token === '' ? null : req.token;
        if (!(await o.access.allows(req.namespace, token, hostOf(ctx.remoteAddress), ctx.signal))) throw o.access.refusal(req.namespace, token);
      }
      const reply = await serve(req, request.payload, ctx.signal, hostOf(ctx.remoteAddress));
      o.metrics.request('native', opName, 'ok');
      return reply;
    } catch (err) {
      o.metrics.request('native', opName, isTwError(err) ? err.code : 'error');
      if (!isTwError(err)) o.logger.error({ err, op: opName }, 'native request failed unexpectedly');
      return { header: encodeReply(errorReplyOf(op, err) as NativeReply) };
    } finally {
      const hold = holds.get(request.header);
      if (hold !== undefined) {
        holds.delete(request.header);
        orphans.unregister(hold);
        release(hold);
      }
    }
  };

  let listener: Listener;
  try {
    listener = await transport.listen(`${o.host.includes(':') ? `[${o.host}]` : o.host}:${o.port}`, handler, {
      payloadDestination,
      onError: (err) => o.logger.debug({ err }, 'native connection error'),
    });
  } catch (err) {
    await transport.close().catch(() => undefined);
    throw gatewayAppErrors.create('TW_GATEWAY_APP_START', `native: cannot listen on ${o.host}:${o.port}: ${(err as Error).message}`, { cause: err });
  }
  const port = Number(listener.address.slice(listener.address.lastIndexOf(':') + 1));
  let closing: Promise<void> | undefined;
  return {
    address: listener.address,
    port,
    get inflightBytes() {
      return budget.usedBytes;
    },
    close(graceMs = 0) {
      closing ??= (async () => {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
        try {
          if ((await Promise.race([listener.close().then(() => 'done' as const), late])) === 'late') await listener.abort();
        } finally {
          clearTimeout(timer);
        }
        await transport.close();
      })();
      return closing;
    },
  };
}
