/**
 * A deliberately naive reference for the namespace and block commands: plain Maps, no KV store,
 * no encoding. The differential test runs random command sequences through it and through the
 * real BlockMap and compares every result and the final state.
 */
import { fragmentCount, type Redundancy } from '@tw/block-format';
import type { BlockRecord, Command, CommandResult, NamespaceInfo, RetiredBlock } from '../src/index.js';
import { BATCH_RECORDS_MAX, QUOTA_MAX_BYTES, TOKEN_HASH_MAX_BYTES, TOUCH_GRANULARITY_MS, TTL_MAX_MS } from '../src/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const err = (code: string): CommandResult => ({ ok: false, code: code as never, message: '', details: {} });

function validName(n: string): boolean {
  return n.length >= 1 && n.length <= 63 && /^[a-z0-9][a-z0-9_-]*$/.test(n);
}
function validRedundancy(r: Redundancy): boolean {
  if (r.kind === 'ec') return Number.isInteger(r.k) && r.k >= 1 && r.k <= 16 && r.m >= 1 && r.m <= 4;
  if (r.kind === 'replicate') return r.n >= 1 && r.n <= 8;
  return r.kind === 'none';
}
const validKey = (k: Uint8Array): boolean => k.byteLength >= 1 && k.byteLength <= 512;

export class ReferenceModel {
  readonly namespaces = new Map<string, NamespaceInfo>();
  /** `${ns}/${hex key}` -> current record. */
  readonly live = new Map<string, BlockRecord>();
  /** `${ns}/${hex key}/${version}` -> superseded record. */
  readonly garbage = new Map<string, BlockRecord>();
  readonly remembered = new Map<string, CommandResult>();
  nextVersion = 1;

  constructor(readonly nodes: ReadonlySet<string>) {}

  apply(clientId: number, seq: number, nowMs: number, c: Command): { duplicate: boolean; result: CommandResult } {
    const id = `${clientId}:${seq}`;
    const prior = clientId === 0 ? undefined : this.remembered.get(id);
    if (prior !== undefined) return { duplicate: true, result: prior };
    const result = this.exec(nowMs, c);
    if (clientId !== 0) this.remembered.set(id, result);
    return { duplicate: false, result };
  }

  private settingsBad(s: { quotaBytes?: number | null; defaultTtlMs?: number; tokenHash?: Uint8Array; redundancy?: Redundancy }): string | null {
    if (s.quotaBytes != null && s.quotaBytes > QUOTA_MAX_BYTES) return 'TW_BLOCKMAP_BAD_NAMESPACE';
    if (s.defaultTtlMs !== undefined && s.defaultTtlMs > TTL_MAX_MS) return 'TW_BLOCKMAP_BAD_NAMESPACE';
    if (s.tokenHash !== undefined && s.tokenHash.byteLength > TOKEN_HASH_MAX_BYTES) return 'TW_BLOCKMAP_BAD_NAMESPACE';
    if (s.redundancy !== undefined && !validRedundancy(s.redundancy)) return 'TW_BLOCKMAP_BAD_REDUNDANCY';
    return null;
  }

  private exec(now: number, c: Command): CommandResult {
    switch (c.op) {
      case 'create-namespace': {
        if (!validName(c.name)) return err('TW_BLOCKMAP_BAD_NAMESPACE');
        const bad = this.settingsBad(c);
        if (bad) return err(bad);
        if (this.namespaces.has(c.name)) return err('TW_BLOCKMAP_NAMESPACE_EXISTS');
        this.namespaces.set(c.name, {
          name: c.name, quotaBytes: c.quotaBytes, defaultTtlMs: c.defaultTtlMs, redundancy: c.redundancy, tokenHash: c.tokenHash,
          usageBytes: 0, blockCount: 0, garbageBytes: 0, garbageCount: 0, createdAtMs: now,
        });
        return { ok: true, op: 'namespace', name: c.name };
      }
      case 'update-namespace': {
        if (!validName(c.name)) return err('TW_BLOCKMAP_BAD_NAMESPACE');
        const bad = this.settingsBad(c);
        if (bad) return err(bad);
        const ns = this.namespaces.get(c.name);
        if (!ns) return err('TW_BLOCKMAP_UNKNOWN_NAMESPACE');
        const next = { ...ns };
        if (c.quotaBytes !== undefined) next.quotaBytes = c.quotaBytes;
        if (c.defaultTtlMs !== undefined) next.defaultTtlMs = c.defaultTtlMs;
        if (c.redundancy !== undefined) next.redundancy = c.redundancy;
        if (c.tokenHash !== undefined) next.tokenHash = c.tokenHash;
        this.namespaces.set(c.name, next);
        return { ok: true, op: 'namespace', name: c.name };
      }
      case 'delete-namespace': {
        if (!validName(c.name)) return err('TW_BLOCKMAP_BAD_NAMESPACE');
        const ns = this.namespaces.get(c.name);
        if (!ns) return err('TW_BLOCKMAP_UNKNOWN_NAMESPACE');
        if (ns.blockCount > 0 || ns.garbageCount > 0) return err('TW_BLOCKMAP_NAMESPACE_NOT_EMPTY');
        this.namespaces.delete(c.name);
        return { ok: true, op: 'namespace', name: c.name };
      }
      case 'commit-blocks': {
        if (!validName(c.namespace)) return err('TW_BLOCKMAP_BAD_NAMESPACE');
        const ns = this.namespaces.get(c.namespace);
        if (!ns) return err('TW_BLOCKMAP_UNKNOWN_NAMESPACE');
        if (c.blocks.length > BATCH_RECORDS_MAX) return err('TW_BLOCKMAP_BATCH_TOO_LARGE');
        for (const b of c.blocks) {
          if (!validKey(b.key)) return err('TW_BLOCKMAP_BAD_KEY');
          const r = b.redundancy ?? ns.redundancy;
          if (!validRedundancy(r)) return err('TW_BLOCKMAP_BAD_REDUNDANCY');
          if (b.fragmentNodes.length !== fragmentCount(r)) return err('TW_BLOCKMAP_BAD_RECORD');
          if (b.fragmentNodes.some((n) => !this.nodes.has(n))) return err('TW_BLOCKMAP_UNKNOWN_NODE');
        }
        const live = new Map(this.live);
        const garbage = new Map(this.garbage);
        const n = { ...ns };
        const versions: number[] = [];
        const superseded: RetiredBlock[] = [];
        let v = this.nextVersion;
        for (const b of c.blocks) {
          const k = `${c.namespace}/${hex(b.key)}`;
          const prev = live.get(k);
          if (prev) {
            let old = prev;
            if (prev.state === 'committed') {
              n.usageBytes -= prev.sizeBytes;
              n.blockCount--;
              n.garbageBytes += prev.sizeBytes;
              n.garbageCount++;
              old = { ...prev, state: 'deleting', deletingSinceMs: now };
            }
            garbage.set(`${k}/${prev.version}`, old);
            superseded.push({ key: prev.key, version: prev.version, writeVersion: prev.writeVersion, sizeBytes: prev.sizeBytes, fragmentNodes: prev.fragmentNodes });
          }
          const assigned = v++;
          const rec: BlockRecord = {
            namespace: c.namespace, key: Uint8Array.from(b.key), version: assigned, writeVersion: b.writeVersion ?? BigInt(assigned), sizeBytes: b.sizeBytes, checksum: b.checksum, layout: b.layout ?? null,
            redundancy: b.redundancy ?? ns.redundancy, fragmentNodes: [...b.fragmentNodes], state: 'committed', createdAtMs: now, lastAccessMs: now,
            ttlMs: b.ttlMs ?? ns.defaultTtlMs, pinned: b.pinned ?? false, deletingSinceMs: 0,
          };
          live.set(k, rec);
          n.usageBytes += rec.sizeBytes;
          n.blockCount++;
          versions.push(rec.version);
        }
        if (ns.quotaBytes !== null && n.usageBytes > ns.quotaBytes && n.usageBytes > ns.usageBytes) return err('TW_BLOCKMAP_QUOTA_EXCEEDED');
        this.replace(live, garbage);
        this.nextVersion = v;
        this.namespaces.set(c.namespace, n);
        return { ok: true, op: 'commit-blocks', versions, superseded };
      }
      case 'delete-blocks':
      case 'touch-blocks': {
        if (!validName(c.namespace)) return err('TW_BLOCKMAP_BAD_NAMESPACE');
        const ns = this.namespaces.get(c.namespace);
        if (!ns) return err('TW_BLOCKMAP_UNKNOWN_NAMESPACE');
        if (c.keys.some((k) => !validKey(k))) return err('TW_BLOCKMAP_BAD_KEY');
        const n = { ...ns };
        const seen = new Set<string>();
        let count = 0;
        for (const key of c.keys) {
          const k = `${c.namespace}/${hex(key)}`;
          if (seen.has(k)) continue;
          seen.add(k);
          const rec = this.live.get(k);
          if (!rec || rec.state !== 'committed') continue;
          if (c.op === 'delete-blocks') {
            this.live.set(k, { ...rec, state: 'deleting', deletingSinceMs: now });
            n.usageBytes -= rec.sizeBytes;
            n.blockCount--;
            n.garbageBytes += rec.sizeBytes;
            n.garbageCount++;
            count++;
          } else if (now >= rec.lastAccessMs + TOUCH_GRANULARITY_MS) {
            this.live.set(k, { ...rec, lastAccessMs: now });
            count++;
          }
        }
        this.namespaces.set(c.namespace, n);
        return c.op === 'delete-blocks' ? { ok: true, op: 'delete-blocks', deleted: count, missing: c.keys.length - count } : { ok: true, op: 'touch-blocks', touched: count };
      }
      case 'purge-blocks': {
        for (const r of c.refs) {
          if (!validName(r.namespace)) return err('TW_BLOCKMAP_BAD_NAMESPACE');
          if (!validKey(r.key)) return err('TW_BLOCKMAP_BAD_KEY');
        }
        const seen = new Set<string>();
        const purged: Extract<CommandResult, { op: 'purge-blocks' }>['purged'][number][] = [];
        for (const r of c.refs) {
          const k = `${r.namespace}/${hex(r.key)}`;
          const gk = `${k}/${r.version}`;
          if (seen.has(gk)) continue;
          seen.add(gk);
          const ns = this.namespaces.get(r.namespace);
          if (!ns) continue;
          const cur = this.live.get(k);
          let rec: BlockRecord | undefined;
          let inLive = false;
          if (cur && cur.version === r.version && cur.state === 'deleting') {
            rec = cur;
            inLive = true;
          } else {
            rec = this.garbage.get(gk);
          }
          if (!rec || rec.deletingSinceMs + c.graceMs > now) continue;
          if (inLive) this.live.delete(k);
          else this.garbage.delete(gk);
          this.namespaces.set(r.namespace, { ...ns, garbageBytes: ns.garbageBytes - rec.sizeBytes, garbageCount: ns.garbageCount - 1 });
          purged.push({ namespace: r.namespace, key: rec.key, version: rec.version, writeVersion: rec.writeVersion, sizeBytes: rec.sizeBytes, fragmentNodes: rec.fragmentNodes });
        }
        return { ok: true, op: 'purge-blocks', purged, skipped: c.refs.length - purged.length };
      }
      default:
        throw new Error(`the reference model does not model ${c.op}`);
    }
  }

  private replace(live: Map<string, BlockRecord>, garbage: Map<string, BlockRecord>): void {
    this.live.clear();
    for (const [k, v] of live) this.live.set(k, v);
    this.garbage.clear();
    for (const [k, v] of garbage) this.garbage.set(k, v);
  }

  /** Current records of a namespace in key byte order. */
  blocksOf(ns: string): BlockRecord[] {
    return [...this.live.values()].filter((r) => r.namespace === ns).sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  }

  lookup(ns: string, keys: readonly Uint8Array[]): number {
    let n = 0;
    for (const k of keys) {
      const r = this.live.get(`${ns}/${hex(k)}`);
      if (!r || r.state !== 'committed') break;
      n++;
    }
    return n;
  }

  /** Every deleting version as `ns/hexkey/version@deletingSinceMs`. */
  deleting(): string[] {
    const out = [...this.live.values(), ...this.garbage.values()].filter((r) => r.state === 'deleting').map((r) => `${r.namespace}/${hex(r.key)}/${r.version}@${r.deletingSinceMs}`);
    return out.sort();
  }
}
