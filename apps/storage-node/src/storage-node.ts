import { Counter, Gauge, Histogram } from 'prom-client';
import { nodeFileLayer, openExtentStore, type ExtentStore } from '@tw/extent-store';
import { type FragmentRequest, Op, createFragmentHandler, decodeRequest, encodeReply } from '@tw/fragment-protocol';
import { type AdminHttp, type Logger, createMetricsRegistry, startAdminHttp } from '@tw/observability';
import type { Listener, PayloadDestination, Reply, RequestHandler, Transport } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import type { StorageNodeConfig } from './config.js';
import { storageNodeErrors } from './errors.js';
import { readBufferPool } from './read-buffer-pool.js';
import { STREAMED_PUTS_MAX, StreamedPut } from './streamed-put.js';
import type { FragmentGc } from './fragment-gc.js';
import { RequestRate, createFragmentGc } from './gc-wiring.js';
import { CoordinatorRegistration } from './registration.js';

/** Idle bytes kept in the GET reply buffer pool. */
const READ_BUFFERS_IDLE_BYTES_MAX = 256 * 1024 * 1024;
/** PUT payloads from this size up are received into pooled buffers. */
const POOLED_PAYLOAD_BYTES_MIN = 64 * 1024;

export interface RunningStorageNode {
  /** Data-plane address, `host:port`, with the real port when the config asked for 0. */
  readonly dataAddress: string;
  readonly adminUrl: string;
  readonly store: ExtentStore;
  /** The garbage-collection sweep (when coordinators are configured and gc.enabled). */
  readonly gc: FragmentGc | undefined;
  /**
   * Graceful stop: refuses new requests, lets in-flight ones finish (bounded by
   * shutdownTimeoutMs), flushes and closes the store, releases the lock.
   */
  stop(): Promise<void>;
}

/** Wires the extent store, the fragment service on TCP, and the admin endpoint. */
export async function startStorageNode(config: StorageNodeConfig, options: { logger: Logger; rebuildIndex?: boolean; nowMs?: () => number }): Promise<RunningStorageNode> {
  const log = options.logger;
  // Fragment ages need elapsed time only: a monotonic clock, immune to wall-clock steps.
  const nowMs = options.nowMs ?? (() => performance.timeOrigin + performance.now());
  const requestRate = new RequestRate(() => performance.now());
  const registry = createMetricsRegistry();
  const requests = new Counter({ name: 'tw_storage_requests_total', help: 'Fragment requests served, by op and outcome', labelNames: ['op', 'outcome'], registers: [registry] });
  const bytes = new Counter({ name: 'tw_storage_payload_bytes_total', help: 'Fragment bytes received (put) and sent (get)', labelNames: ['op'], registers: [registry] });
  const latency = new Histogram({
    name: 'tw_storage_request_duration_seconds',
    help: 'Fragment request latency inside the node',
    labelNames: ['op'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const corruptions = new Counter({ name: 'tw_storage_corrupt_records_total', help: 'Records found corrupt (never served)', registers: [registry] });

  log.info({ dataDir: config.dataDir, rebuildIndex: options.rebuildIndex ?? false }, 'opening extent store');
  const openedAt = performance.now();
  const files = nodeFileLayer({ syncWriteBytesMax: config.inlineIo.writeBytesMax, syncReadBytesMax: config.inlineIo.readBytesMax });
  const deadExtents = new Counter({
    name: 'tw_storage_dead_extents_dropped_total',
    help: 'Extents dropped as soon as their last live fragment was deleted (compaction.reclaimDeadExtents)',
    registers: [registry],
  });
  const store = await openExtentStore({
    dir: config.dataDir,
    files,
    extentSizeBytes: config.extentSizeBytes,
    fsync: config.fsync.mode === 'group' ? { mode: 'group', intervalMs: config.fsync.intervalMs } : { mode: config.fsync.mode },
    ...(config.capacityBytes === undefined ? {} : { capacityBytes: config.capacityBytes }),
    reserveBytes: config.reserveBytes,
    payloadBytesMax: config.fragmentBytesMax + 64,
    compaction: { garbageRatioMin: config.compaction.garbageRatioMin, intervalMs: config.compaction.intervalMs, reclaimDeadExtents: config.compaction.reclaimDeadExtents },
    onReclaim: (r) => {
      deadExtents.inc(r.extentsCompacted);
      if (r.extentsCompacted > 0) log.debug({ extents: r.extentsCompacted, bytes: r.bytesReclaimed }, 'dead extents dropped');
    },
    rebuildIndex: options.rebuildIndex ?? false,
    onCorrupt: (report) => {
      corruptions.inc();
      log.error({ extentNo: report.extentNo, offset: report.offset, during: report.during, reason: report.reason, id: report.id?.toString('hex') }, 'corrupt record');
    },
  });
  const cap0 = store.capacity();
  log.info({ fragments: cap0.fragmentCount, liveBytes: cap0.liveBytes, openMs: Math.round(performance.now() - openedAt) }, 'extent store open');

  const capacityGauge = new Gauge({
    name: 'tw_storage_capacity_bytes',
    help: 'Extent store bytes by kind (live, garbage, free)',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      const c = store.capacity();
      this.set({ kind: 'live' }, c.liveBytes);
      this.set({ kind: 'garbage' }, c.garbageBytes);
      this.set({ kind: 'free' }, c.freeBytes);
    },
  });
  void capacityGauge;
  new Gauge({
    name: 'tw_storage_unindexed_records',
    help: 'Records acknowledged but not yet in the LevelDB index (served from memory meanwhile); a value that keeps rising means the index is falling behind',
    registers: [registry],
    collect() {
      this.set(store.unindexedRecords);
    },
  });
  const streamedPuts = new Counter({
    name: 'tw_storage_streamed_puts_total',
    help: 'PUTs written to their extent while they arrived (streamedPutBytesMin; at most a few at once, the rest are received whole)',
    registers: [registry],
  });
  new Gauge({
    name: 'tw_storage_put_streams',
    help: 'PUTs being written to their extent while they arrive',
    registers: [registry],
    collect() {
      this.set(store.openPutStreams);
    },
  });
  // Counters owned by the file layer, read at scrape time (a Gauge's collect; the values only grow).
  new Gauge({
    name: 'tw_storage_record_writes',
    help: 'Record writes since start, by path: inline (event loop, small records) or pool (thread pool)',
    labelNames: ['path'],
    registers: [registry],
    collect() {
      this.set({ path: 'inline' }, files.writeStats.inlineWrites);
      this.set({ path: 'pool' }, files.writeStats.pooledWrites);
    },
  });
  new Gauge({
    name: 'tw_storage_inline_write_pauses',
    help: 'Times since start that a slow inline write (kernel throttling, journal waits) sent writes to the thread pool for a while',
    registers: [registry],
    collect() {
      this.set(files.writeStats.inlinePauses);
    },
  });
  new Gauge({
    name: 'tw_storage_record_reads',
    help: 'Record reads of gets since start, by path: inline (event loop, records up to 2 MiB expected in the page cache) or pool (thread pool)',
    labelNames: ['path'],
    registers: [registry],
    collect() {
      this.set({ path: 'inline' }, files.readStats.inlineReads);
      this.set({ path: 'pool' }, files.readStats.pooledReads);
    },
  });
  new Gauge({
    name: 'tw_storage_inline_read_pauses',
    help: 'Times since start that a slow inline read (a page-cache miss) sent reads to the thread pool for a while',
    registers: [registry],
    collect() {
      this.set(files.readStats.inlinePauses);
    },
  });
  new Gauge({
    name: 'tw_storage_slow_cached_reads',
    help: 'Inline record reads since start that were slow with no block input (the event loop waited for a CPU, not the disk): they do not pause the inline path',
    registers: [registry],
    collect() {
      this.set(files.readStats.slowCachedReads);
    },
  });
  new Gauge({
    name: 'tw_storage_fragments',
    help: 'Fragments stored',
    registers: [registry],
    collect() {
      this.set(store.capacity().fragmentCount);
    },
  });

  // One pool for GET reply buffers and PUT receive buffers: a fresh multi-MiB buffer per request
  // costs page faults on first touch (and an munmap at GC), more than the copy into it.
  const buffers = readBufferPool(READ_BUFFERS_IDLE_BYTES_MAX);
  const onRequest = (op: string, n: number, outcome: 'ok' | 'not_found' | 'error', ms: number): void => {
    requests.inc({ op, outcome });
    requestRate.hit();
    if (n > 0) bytes.inc({ op }, n);
    latency.observe({ op }, ms / 1000);
  };
  const fragmentHandler = createFragmentHandler(store, { readBuffers: buffers, onRequest }, () => performance.now());
  // PUT payloads received into pooled buffers (payloadDestination below), by their ArrayBuffer
  // (each pooled buffer owns one: they are far above Node's small-buffer pool size). A buffer
  // goes back to the pool once the handler settled: the extent store's put (or streamed put) has
  // finished writing from it by then, whether it succeeded or not. A buffer whose connection died
  // mid-receive goes back once its streamed put is abandoned, or is left to the GC.
  const receiving = new WeakMap<ArrayBufferLike, { pooled: Buffer; put: StreamedPut | undefined }>();
  /** Streamed puts between their header and their end (handler settled, or abandoned). */
  let streaming = 0;
  const release = (pooled: Buffer): void => {
    const rx = receiving.get(pooled.buffer);
    if (rx?.pooled !== pooled) return;
    if (rx.put !== undefined) streaming--;
    receiving.delete(pooled.buffer);
    buffers.release(pooled);
  };
  const streamedPut = async (put: StreamedPut): Promise<Reply> => {
    const started = performance.now();
    try {
      const seq = await put.finish();
      onRequest('put', put.payloadBytes, 'ok', performance.now() - started);
      return { header: encodeReply({ op: Op.PUT, found: true, seq }) };
    } catch (err) {
      // Never acknowledged: the record is given up (a failed check, a full or failing disk).
      await put.abandon(err);
      onRequest('put', 0, 'error', performance.now() - started);
      throw err;
    }
  };
  const handler: RequestHandler = async (request, context) => {
    const rx = receiving.get(request.payload.buffer);
    try {
      return rx?.put !== undefined ? await streamedPut(rx.put) : await fragmentHandler(request, context);
    } finally {
      if (rx !== undefined) release(rx.pooled);
    }
  };
  const streamedPutBytesMin = config.streamedPutBytesMin === 0 ? Infinity : Math.max(config.streamedPutBytesMin, POOLED_PAYLOAD_BYTES_MIN);
  const payloadDestination: PayloadDestination = (header, payloadBytes) => {
    if (payloadBytes < POOLED_PAYLOAD_BYTES_MIN) return undefined;
    const pooled = buffers.acquire(payloadBytes);
    let put: StreamedPut | undefined;
    if (payloadBytes >= streamedPutBytesMin) {
      let req: FragmentRequest | undefined;
      try {
        req = decodeRequest(header);
      } catch {
        // malformed: the handler answers it with its coded error
      }
      if (req?.op === Op.PUT && !stopping && streaming < STREAMED_PUTS_MAX) {
        put = new StreamedPut(store, req.id, pooled, payloadBytes);
        streaming++;
        streamedPuts.inc();
      }
    }
    receiving.set(pooled.buffer, { pooled, put });
    if (put === undefined) return pooled;
    const p = put;
    return {
      buffer: pooled,
      onBytes: (n) => p.onBytes(n),
      // The connection died mid-payload: give the record up, then recycle the buffer.
      onAbandon: (reason) => void p.abandon(reason).finally(() => release(pooled)),
    };
  };

  let transport: Transport | undefined;
  let listener: Listener | undefined;
  let admin: AdminHttp | undefined;
  let stopping = false;
  let registration: CoordinatorRegistration | undefined;
  try {
    transport = tcpTransport({ payloadBytesMax: config.fragmentBytesMax + 4096 })({});
    listener = await transport.listen(`${config.listen.host}:${config.listen.port}`, handler, {
      payloadDestination,
      onError: (err) => log.warn({ err: { message: err.message, code: (err as { code?: string }).code } }, 'connection error'),
    });
    admin = await startAdminHttp({
      host: config.admin.host,
      port: config.admin.port,
      registry,
      readiness: () =>
        stopping
          ? { ready: false, reason: 'shutting down' }
          : store.writeFailure !== undefined
            ? { ready: false, reason: `refusing writes since an index update failed (${store.writeFailure.message}); reads go on; restart to re-index from the extents` }
            : registration !== undefined && !registration.registered
              ? { ready: false, reason: 'not registered with the coordinators yet' }
              : { ready: true },
    });
  } catch (err) {
    await listener?.abort().catch(() => undefined);
    await transport?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw storageNodeErrors.create('TW_STORAGE_NODE_START', `storage node failed to start: ${(err as Error).message}`, { cause: err });
  }
  const dataAddress = listener.address;
  const adminUrl = admin.url;
  if (config.coordinators.length > 0) {
    registration = new CoordinatorRegistration({
      coordinators: config.coordinators,
      nodeId: config.nodeId,
      dataAddress: config.advertiseAddress || dataAddress,
      adminUrl,
      failureDomain: config.failureDomain || `host-${config.nodeId}`,
      weight: config.weight,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      capacity: () => {
        const c = store.capacity();
        return { capacityBytes: c.liveBytes + c.freeBytes, usedBytes: c.liveBytes, fragmentCount: c.fragmentCount };
      },
      logger: log,
    });
    registration.start();
  }
  const fragmentGc = config.coordinators.length > 0 && config.gc.enabled ? createFragmentGc(config, store, registry, log, nowMs, requestRate) : undefined;
  fragmentGc?.gc.start();
  log.info({ nodeId: config.nodeId, dataAddress, adminUrl, coordinators: config.coordinators }, 'storage node ready');

  let stopped: Promise<void> | undefined;
  return {
    dataAddress,
    adminUrl,
    store,
    gc: fragmentGc?.gc,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        registration?.stop();
        await fragmentGc?.close();
        log.info('stopping: finishing in-flight requests');
        const graceful = listener.close();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          graceful.then(() => false),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(true), config.shutdownTimeoutMs);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          log.warn({ shutdownTimeoutMs: config.shutdownTimeoutMs }, 'in-flight requests did not finish in time; dropping connections');
          await listener.abort();
        }
        await transport.close();
        await admin.close();
        await store.close();
        log.info('stopped');
      })();
      return stopped;
    },
  };
}
