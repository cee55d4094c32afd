import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Gateway, GatewayHooks } from '@tw/gateway-core';
import { createMetricsRegistry } from '@tw/observability';

export interface GatewayMetrics {
  readonly registry: Registry;
  readonly hooks: GatewayHooks;
  /** One front-end request (HTTP route, RESP command, lm:// request, native op) with its outcome. */
  request(frontend: 'http' | 'resp' | 'lmcache' | 'native', op: string, outcome: string): void;
  /** Sets the gateway whose stats() the gauges read (after it is created). */
  attach(gateway: Gateway): void;
}

/** Prometheus metrics of the gateway: hits, misses, bytes, latencies, DRAM tier, front-end requests. */
export function createGatewayMetrics(): GatewayMetrics {
  const registry = createMetricsRegistry();
  const ops = new Counter({ name: 'tw_gateway_ops_total', help: 'Data-path operations by op and outcome (get: ok is a hit, miss a miss)', labelNames: ['op', 'outcome'], registers: [registry] });
  const bytes = new Counter({ name: 'tw_gateway_payload_bytes_total', help: 'Value bytes put and got', labelNames: ['op'], registers: [registry] });
  const latency = new Histogram({
    name: 'tw_gateway_op_duration_seconds',
    help: 'Data-path operation latency',
    labelNames: ['op'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const requests = new Counter({ name: 'tw_gateway_requests_total', help: 'Front-end requests by front-end, op and outcome', labelNames: ['frontend', 'op', 'outcome'], registers: [registry] });
  const badFragments = new Counter({ name: 'tw_gateway_bad_fragments_total', help: 'Fragments found missing, corrupt or late on reads', labelNames: ['reason'], registers: [registry] });
  const writeFailures = new Counter({ name: 'tw_gateway_async_write_failures_total', help: 'Async puts that failed after they were acknowledged', registers: [registry] });
  let gw: Gateway | undefined;
  const stat = (name: string, help: string, pick: (s: ReturnType<Gateway['stats']>) => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        if (gw !== undefined) this.set(pick(gw.stats()));
      },
    });
  };
  stat('tw_gateway_dram_tier_bytes', 'Bytes held in the DRAM tier', (s) => s.dramTierBytes);
  stat('tw_gateway_dram_tier_entries', 'Blocks held in the DRAM tier', (s) => s.dramTierEntries);
  stat('tw_gateway_dram_hits', 'Gets served from the DRAM tier (since start)', (s) => s.dramHits);
  stat('tw_gateway_dram_misses', 'Gets not served from the DRAM tier (since start)', (s) => s.dramMisses);
  stat('tw_gateway_dram_evictions', 'DRAM tier evictions (since start)', (s) => s.dramEvictions);
  stat('tw_gateway_inflight_bytes', 'Fragment bytes in flight to storage nodes', (s) => s.inflightBytes);
  stat('tw_gateway_degraded_reads', 'Reads reconstructed from parity (since start)', (s) => s.degradedReads);
  stat('tw_gateway_orphaned_blocks', 'Blocks written but never committed (since start)', (s) => s.orphanedBlocks);
  stat('tw_gateway_bad_fragment_reports_sent', 'Bad fragments reported to the coordinators (since start)', (s) => s.badFragmentReportsSent);
  stat('tw_gateway_bad_fragment_reports_dropped', 'Bad-fragment reports dropped: queue full (since start)', (s) => s.badFragmentReportsDropped);
  stat('tw_gateway_bad_fragment_reports_failed', 'Bad-fragment reports lost with a failed call (since start)', (s) => s.badFragmentReportsFailed);
  stat('tw_gateway_read_repairs', 'Fragments rebuilt and rewritten after degraded reads (since start)', (s) => s.readRepairs);
  stat('tw_gateway_read_repair_failures', 'Read-repair writes that failed (since start)', (s) => s.readRepairFailures);
  stat('tw_gateway_read_repairs_skipped', 'Read repairs skipped: node not up, or too many in flight (since start)', (s) => s.readRepairsSkipped);
  stat('tw_gateway_cluster_epoch', 'Cluster map epoch the gateway follows', (s) => s.clusterEpoch);
  return {
    registry,
    hooks: {
      onOp(op, latencyMs, n, outcome) {
        ops.inc({ op, outcome });
        latency.observe({ op }, latencyMs / 1000);
        if (n > 0 && (op === 'put' || op === 'get')) bytes.inc({ op }, n);
      },
      onBadFragment(f) {
        badFragments.inc({ reason: f.reason });
      },
      onWriteFailed() {
        writeFailures.inc();
      },
    },
    request(frontend, op, outcome) {
      requests.inc({ frontend, op, outcome });
    },
    attach(g) {
      gw = g;
    },
  };
}
