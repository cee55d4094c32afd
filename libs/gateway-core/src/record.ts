import { type KvLayout, type Redundancy, fragmentCount, parseRedundancy } from '@tw/block-format';
import { type BlockRecordMsg, type WireRecord, decodeWireRecords } from '@tw/rpc';
import { gatewayErrors } from './errors.js';

/** A committed block as the gateway uses it (from the coordinators' BlockRecord). */
export interface GatewayRecord {
  readonly namespace: string;
  readonly key: Buffer;
  /** The version its fragments are stored under. */
  readonly version: bigint;
  readonly sizeBytes: number;
  /** xxh64 of the payload. */
  readonly checksum: bigint;
  readonly redundancy: Redundancy;
  /** Node id holding fragment i. */
  readonly fragmentNodes: readonly string[];
  readonly layout: KvLayout | null;
}

export function recordFromMsg(m: BlockRecordMsg): GatewayRecord {
  try {
    const redundancy = parseRedundancy(m.redundancy);
    if (m.fragmentNodes.length !== fragmentCount(redundancy)) throw new Error(`${m.fragmentNodes.length} fragment nodes for ${m.redundancy}`);
    const sizeBytes = Number(m.sizeBytes);
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0) throw new Error(`size ${m.sizeBytes}`);
    return {
      namespace: m.namespace,
      key: Buffer.from(m.key),
      version: BigInt(m.version),
      sizeBytes,
      checksum: BigInt.asUintN(64, BigInt(m.checksum)),
      redundancy,
      fragmentNodes: [...m.fragmentNodes],
      layout: m.layout ?? null,
    };
  } catch (err) {
    throw gatewayErrors.create('TW_GATEWAY_BAD_RECORD', `malformed block record from the coordinators: ${(err as Error).message}`, { cause: err });
  }
}

/** The same from a packed record (LookupPrefix with `packed: true`, decodeWireRecords). */
export function recordFromWire(namespace: string, m: WireRecord): GatewayRecord {
  try {
    const redundancy = parseRedundancy(m.redundancy);
    if (m.fragmentNodes.length !== fragmentCount(redundancy)) throw new Error(`${m.fragmentNodes.length} fragment nodes for ${m.redundancy}`);
    return {
      namespace,
      key: Buffer.from(m.key),
      version: m.version,
      sizeBytes: m.sizeBytes,
      checksum: m.checksum,
      redundancy,
      fragmentNodes: m.fragmentNodes,
      layout: m.layout,
    };
  } catch (err) {
    throw gatewayErrors.create('TW_GATEWAY_BAD_RECORD', `malformed block record from the coordinators: ${(err as Error).message}`, { cause: err });
  }
}

/** Map key of (namespace, key): namespaces never contain NUL. */
export function entryKey(namespace: string, key: Uint8Array): string {
  return `${namespace}\0${Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1')}`;
}

/**
 * Records of committed (immutable) versions, trusted for a short lease, LRU-bounded. A lease
 * lets a reader see a version another gateway has since replaced or deleted for at most
 * `leaseMs`: the old version's fragments stay readable for the coordinators' purge grace period,
 * which must be longer.
 */
export class RecordCache {
  readonly #map = new Map<string, { record: GatewayRecord; expiresAtMs: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly leaseMs: number,
    private readonly nowMs: () => number,
  ) {}

  get(k: string): GatewayRecord | undefined {
    const e = this.#map.get(k);
    if (e === undefined) return undefined;
    if (e.expiresAtMs <= this.nowMs()) {
      this.#map.delete(k);
      return undefined;
    }
    this.#map.delete(k);
    this.#map.set(k, e);
    return e.record;
  }

  set(k: string, record: GatewayRecord): void {
    if (this.leaseMs <= 0 || this.maxEntries <= 0) return;
    this.#map.delete(k);
    this.#map.set(k, { record, expiresAtMs: this.nowMs() + this.leaseMs });
    while (this.#map.size > this.maxEntries) this.#map.delete(this.#map.keys().next().value!);
  }

  delete(k: string): void {
    this.#map.delete(k);
  }

  get size(): number {
    return this.#map.size;
  }
}

/**
 * The records of a LookupPrefix answer, packed (asked with `packed: true`) or, from a
 * coordinator that predates packed replies, as messages. Malformed: TW_GATEWAY_BAD_RECORD.
 */
export function recordsOfLookup(namespace: string, res: { records: readonly BlockRecordMsg[]; packedRecords?: Uint8Array | undefined }): GatewayRecord[] {
  if (res.packedRecords !== undefined && res.packedRecords.length > 0) {
    let wire: WireRecord[];
    try {
      wire = decodeWireRecords(res.packedRecords);
    } catch (err) {
      throw gatewayErrors.create('TW_GATEWAY_BAD_RECORD', `malformed packed records from the coordinators: ${(err as Error).message}`, { cause: err });
    }
    return wire.map((r) => recordFromWire(namespace, r));
  }
  return res.records.map(recordFromMsg);
}
