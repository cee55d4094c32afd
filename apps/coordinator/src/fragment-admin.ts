import { createHash, timingSafeEqual } from 'node:crypto';
import { Gauge, type Registry } from 'prom-client';
import type { CoordinatorService } from '@tw/coordinator-service';
import type { AdminHttpOptions } from '@tw/observability';

type FastifyInstance = Parameters<NonNullable<AdminHttpOptions['extend']>>[0];

const LIST_LIMIT_MAX = 1000;

/** Bad-fragment reports and fragment liveness answers in /metrics. */
export function registerFragmentMetrics(registry: Registry, service: CoordinatorService): void {
  // Counters kept by the service, exposed as gauges read at scrape time (they only grow).
  new Gauge({
    name: 'tw_coordinator_bad_fragment_reports_total',
    help: 'Bad-fragment sightings reported by gateways to this coordinator (while it led), by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      for (const [reason, n] of service.badFragments.totals()) this.set({ reason }, n);
    },
  });
  new Gauge({ name: 'tw_coordinator_bad_fragments_tracked', help: 'Distinct bad fragments in this coordinator\'s bounded list', registers: [registry], collect() { this.set(service.badFragments.size); } });
  new Gauge({
    name: 'tw_coordinator_bad_fragment_reports_dropped_total',
    help: 'Bad-fragment sightings the gateways dropped (their report queue was full)',
    registers: [registry],
    collect() {
      this.set(service.badFragments.droppedByGateways);
    },
  });
  new Gauge({
    name: 'tw_coordinator_fragment_checks_total',
    help: 'CheckFragments answers (storage-node garbage collection), by liveness',
    labelNames: ['liveness'],
    registers: [registry],
    collect() {
      for (const [liveness, n] of Object.entries(service.fragmentChecks)) this.set({ liveness }, n);
    },
  });
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/**
 * `GET /v1/bad-fragments?limit=N`: the bad fragments this coordinator heard of, most recent first
 * (reports go to the leader: ask the leader). Bearer admin token when one is configured.
 */
export function addBadFragmentRoutes(app: FastifyInstance, service: CoordinatorService, adminToken: string | undefined): void {
  app.get('/v1/bad-fragments', async (req, reply) => {
    if (adminToken !== undefined && adminToken !== '') {
      const auth = req.headers.authorization ?? '';
      const given = auth.startsWith('Bearer ') ? auth.slice(7) : '';
      if (!timingSafeEqual(sha256(given), sha256(adminToken))) return reply.code(401).send({ code: 'TW_COORD_FORBIDDEN', message: 'wrong or missing admin token' });
    }
    const raw = (req.query as Record<string, unknown>)['limit'];
    const limit = raw === undefined ? 100 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > LIST_LIMIT_MAX) return reply.code(400).send({ code: 'TW_COORD_BAD_REQUEST', message: `limit must be an integer in [1, ${LIST_LIMIT_MAX}]` });
    const log = service.badFragments;
    return {
      tracked: log.size,
      evicted: log.evicted,
      droppedByGateways: log.droppedByGateways,
      fragments: log.list(limit).map((e) => ({
        namespace: e.namespace,
        keyHex: e.key.toString('hex'),
        version: String(e.version),
        index: e.index,
        nodeId: e.nodeId,
        reason: e.reason,
        detail: e.detail,
        count: e.count,
        gateways: [...e.gateways],
        firstSeenMs: e.firstSeenMs,
        lastSeenMs: e.lastSeenMs,
      })),
    };
  });
}
