/**
 * The storage node wired in-process (real extent store, real TCP transport on loopback, real
 * fragment protocol): the fragment service, its checks, and its behaviour under bad input.
 */
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { checksum64, encodeFragmentHeader, keyHash64, type FragmentHeader } from '@tw/block-format';
import { FragmentClient, Op, encodeFragmentId, encodeKeyPrefix, encodeRequest, type FragmentId } from '@tw/fragment-protocol';
import { createLogger } from '@tw/observability';
import type { Transport } from '@tw/transport';
import { tcpTransport } from '@tw/transport-tcp';
import { StorageNodeConfigSchema, startStorageNode, type RunningStorageNode, type StorageNodeConfig } from '../src/index.js';
import { parseConfig } from '@tw/config';

const quiet = createLogger({ role: 'storage-node', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(overrides: Record<string, unknown> = {}): Promise<{ node: RunningStorageNode; client: FragmentClient; transport: Transport; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-sn-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const config = parseConfig(StorageNodeConfigSchema, {
    dataDir: dir,
    listen: { port: 0 },
    admin: { port: 0 },
    extentSizeBytes: 4 * 1024 * 1024,
    reserveBytes: 0,
    fragmentBytesMax: 1024 * 1024,
    ...overrides,
  }) as StorageNodeConfig;
  const node = await startStorageNode(config, { logger: quiet });
  cleanups.push(() => node.stop());
  const transport = tcpTransport()({});
  cleanups.push(() => transport.close());
  const client = new FragmentClient(await transport.dial(node.dataAddress));
  return { node, client, transport, dir };
}

function fragment(key: string, version: bigint, bytes: Buffer, index = 0): { id: FragmentId; header: FragmentHeader } {
  const k = Buffer.from(key);
  return {
    id: { namespace: 'default', key: k, version, index },
    header: {
      redundancy: { kind: 'replicate', n: 3 },
      fragmentIndex: index,
      fragmentLength: bytes.length,
      keyHash: keyHash64('default', k),
      blockVersion: version,
      payloadLength: bytes.length,
      fragmentChecksum: checksum64(bytes),
    },
  };
}

describe('fragment service', () => {
  test('put, get, stat, list, delete, capacity', async () => {
    const { client } = await start();
    const bytes = Buffer.alloc(300_000, 9);
    const f = fragment('chunk-a', 1n, bytes);
    await client.put(f.id, f.header, bytes);
    const got = await client.get(f.id);
    expect(got?.bytes.equals(bytes)).toBe(true);
    expect(got?.header).toEqual(f.header);
    expect(await client.stat(f.id)).toMatchObject({ sizeBytes: bytes.length + 64 });
    const into = Buffer.alloc(bytes.length + 64 + 100);
    const got2 = await client.get(f.id, { into });
    expect(got2?.bytes.buffer).toBe(into.buffer);
    const f2 = fragment('chunk-a', 2n, Buffer.from('v2'));
    await client.put(f2.id, f2.header, Buffer.from('v2'));
    const listing = await client.list(encodeKeyPrefix('default', Buffer.from('chunk-a')));
    expect(listing.entries.map((e) => e.id)).toEqual([encodeFragmentId(f.id), encodeFragmentId(f2.id)]);
    expect((await client.capacity()).fragmentCount).toBe(2);
    expect(await client.delete(f.id)).toBe(true);
    expect(await client.get(f.id)).toBeUndefined();
    expect(await client.delete(f.id)).toBe(false);
    expect(await client.stat(f.id)).toBeUndefined();
  });

  test('puts received into pooled buffers: concurrent puts of distinct bytes, refused ones too, all read back intact', async () => {
    // Some streamed (written while they arrive, at most a few at once), the others received whole.
    const { client } = await start({ streamedPutBytesMin: 128 * 1024 });
    // Sizes straddle the pooling threshold (64 KiB) and share size classes, so buffers are reused
    // across puts while others are still being received and written.
    const sizes = [64 * 1024, 100_000, 1000 * 1024, 1000 * 1024 - 7, 900_001, 200_000];
    const puts = Array.from({ length: 48 }, (_, i) => {
      const size = sizes[i % sizes.length]!;
      const bytes = Buffer.alloc(size);
      for (let j = 0; j < size; j += 4096) bytes.writeUInt32LE((i * 2654435761 + j) >>> 0, j);
      return { ...fragment(`pooled-${i}`, 1n, bytes), bytes };
    });
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < puts.length) {
          const p = puts[next++]!;
          // Every fifth put carries a wrong checksum: refused, and its buffer goes back to the pool.
          if (next % 5 === 0) {
            await expect(client.put(p.id, { ...p.header, fragmentChecksum: p.header.fragmentChecksum ^ 1n }, p.bytes)).rejects.toThrow();
            await client.put(p.id, p.header, p.bytes);
          } else await client.put(p.id, p.header, p.bytes);
        }
      }),
    );
    for (const p of puts) expect((await client.get(p.id))?.bytes.equals(p.bytes)).toBe(true);
  });

  test('by default, fragments from 2 MiB up are written while they arrive, smaller ones whole; 0 turns streaming off', async () => {
    const streamed = async (node: RunningStorageNode): Promise<number> => {
      const m = /^tw_storage_streamed_puts_total (\d+)$/m.exec(await (await fetch(`${node.adminUrl}/metrics`)).text());
      return Number(m?.[1]);
    };
    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let j = 0; j < big.length; j += 4096) big.writeUInt32LE((j * 2654435761) >>> 0, j);
    const small = big.subarray(0, 1024 * 1024);
    for (const [overrides, expected] of [[{}, 1], [{ streamedPutBytesMin: 0 }, 0]] as const) {
      const { client, node } = await start({ fragmentBytesMax: 4 * 1024 * 1024, ...overrides });
      const a = fragment('big', 1n, big);
      const b = fragment('small', 1n, small);
      await client.put(a.id, a.header, big);
      await client.put(b.id, b.header, small);
      expect(await streamed(node)).toBe(expected);
      expect((await client.get(a.id))?.bytes.equals(big)).toBe(true);
      expect((await client.get(b.id))?.bytes.equals(small)).toBe(true);
    }
  });

  test('a fragment whose bytes do not match its checksum is refused and nothing is stored', async () => {
    const { client, node } = await start();
    const bytes = Buffer.alloc(1000, 1);
    const f = fragment('chunk-b', 1n, bytes);
    const header = encodeRequest({ op: Op.PUT, id: encodeFragmentId(f.id) });
    const corrupt = Buffer.from(bytes);
    corrupt[10]! ^= 0xff;
    await expect(client.peer.request({ header, payload: [encodeFragmentHeader(f.header), corrupt] })).rejects.toMatchObject({ code: 'TW_CHECKSUM_MISMATCH' });
    const other = fragment('chunk-c', 1n, bytes);
    await expect(client.peer.request({ header, payload: [encodeFragmentHeader(other.header), bytes] })).rejects.toMatchObject({ code: 'TW_FRAGMENT_MISMATCH' });
    await expect(client.peer.request({ header: Buffer.from([1, 99, 0, 0]) })).rejects.toMatchObject({ code: 'TW_FRAGMENT_BAD_REQUEST' });
    await node.store.indexed();
    expect(node.store.capacity().fragmentCount).toBe(0);
    // The connection still works.
    await client.put(f.id, f.header, bytes);
    expect((await client.get(f.id))?.bytes.equals(bytes)).toBe(true);
  });

  test('a streamed put (written while it arrives) is refused on a bad checksum or header, and nothing of it shows', async () => {
    const { client, node } = await start({ streamedPutBytesMin: 128 * 1024 });
    const bytes = Buffer.alloc(700_000);
    for (let j = 0; j < bytes.length; j += 4096) bytes.writeUInt32LE((j * 2654435761) >>> 0, j);
    const f = fragment('streamed', 1n, bytes);
    const header = encodeRequest({ op: Op.PUT, id: encodeFragmentId(f.id) });
    const corrupt = Buffer.from(bytes);
    corrupt[500_000]! ^= 0x01;
    await expect(client.peer.request({ header, payload: [encodeFragmentHeader(f.header), corrupt] })).rejects.toMatchObject({ code: 'TW_CHECKSUM_MISMATCH' });
    const other = fragment('another', 1n, bytes);
    await expect(client.peer.request({ header, payload: [encodeFragmentHeader(other.header), bytes] })).rejects.toMatchObject({ code: 'TW_FRAGMENT_MISMATCH' });
    const short = bytes.subarray(0, 600_000);
    await expect(client.peer.request({ header, payload: [encodeFragmentHeader(f.header), short] })).rejects.toMatchObject({ code: 'TW_CHECKSUM_MISMATCH' });
    await node.store.indexed();
    expect(node.store.capacity().fragmentCount).toBe(0);
    expect(await client.get(f.id)).toBeUndefined();
    // Not even an index rebuild finds them: a refused record never got its trailer.
    await node.store.rebuildIndex();
    expect(node.store.capacity().fragmentCount).toBe(0);
    await client.put(f.id, f.header, bytes);
    expect((await client.get(f.id))?.bytes.equals(bytes)).toBe(true);
  });

  test('a client that dies mid-payload: its record is abandoned, later puts are acknowledged, a rebuild does not bring it back', async () => {
    const { client, node, dir } = await start({ streamedPutBytesMin: 128 * 1024 });
    const bytes = Buffer.alloc(900_000, 7);
    const lost = fragment('lost', 1n, bytes);
    const header = encodeRequest({ op: Op.PUT, id: encodeFragmentId(lost.id) });
    const payload = Buffer.concat([encodeFragmentHeader(lost.header), bytes]);
    const prefix = Buffer.alloc(16);
    prefix.writeUInt16LE(0x5754, 0);
    prefix.writeUInt8(1, 2);
    prefix.writeUInt8(1, 3); // REQUEST
    prefix.writeUInt32LE(1, 4);
    prefix.writeUInt32LE(header.length, 8);
    prefix.writeUInt32LE(payload.length, 12);
    const seqBefore = node.store.lastSeq;
    const [host, port] = [node.dataAddress.slice(0, node.dataAddress.lastIndexOf(':')), Number(node.dataAddress.slice(node.dataAddress.lastIndexOf(':') + 1))];
    const sock = connect({ host, port });
    await new Promise<void>((resolve) => sock.on('connect', () => resolve()));
    sock.write(Buffer.concat([prefix, header, payload.subarray(0, 400_000)]));
    // The node has taken the record's place (its seq) once the header is in.
    for (let i = 0; i < 5000 && node.store.lastSeq === seqBefore; i++) await new Promise((r) => setTimeout(r, 1));
    expect(node.store.lastSeq).toBeGreaterThan(seqBefore);
    expect(node.store.openPutStreams).toBe(1);
    sock.destroy();
    // The transport tells the node (onAbandon), which gives the record up at once, well before
    // the store's idle bound (30 s) would; bounded wait, not a speed assertion.
    const deadline = performance.now() + 10_000;
    while (node.store.openPutStreams > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    expect(node.store.openPutStreams).toBe(0);
    const later = fragment('later', 1n, Buffer.alloc(300_000, 8));
    await client.put(later.id, later.header, Buffer.alloc(300_000, 8));
    expect(await client.get(lost.id)).toBeUndefined();
    await node.stop();
    const config = parseConfig(StorageNodeConfigSchema, { dataDir: dir, listen: { port: 0 }, admin: { port: 0 }, extentSizeBytes: 4 * 1024 * 1024, reserveBytes: 0 }) as StorageNodeConfig;
    const again = await startStorageNode(config, { logger: quiet, rebuildIndex: true });
    cleanups.push(() => again.stop());
    const t = tcpTransport()({});
    cleanups.push(() => t.close());
    const c = new FragmentClient(await t.dial(again.dataAddress));
    expect(await c.get(lost.id)).toBeUndefined();
    expect((await c.get(later.id))?.bytes.equals(Buffer.alloc(300_000, 8))).toBe(true);
  });

  test('an oversized payload gets a coded error and the node keeps serving', async () => {
    const { client } = await start({ fragmentBytesMax: 64 * 1024 });
    const big = Buffer.alloc(200 * 1024, 2);
    const f = fragment('big', 1n, big);
    await expect(client.put(f.id, f.header, big)).rejects.toMatchObject({ code: expect.stringMatching(/^TW_(TRANSPORT_FRAME_TOO_LARGE|EXTENT_PAYLOAD_TOO_LARGE)/) });
    const small = Buffer.alloc(1000, 3);
    const g = fragment('small', 1n, small);
    await client.put(g.id, g.header, small);
    expect((await client.get(g.id))?.bytes.equals(small)).toBe(true);
  });

  test('garbage on a raw socket closes that connection; the node keeps serving others', async () => {
    const { client, node } = await start();
    const [host, port] = [node.dataAddress.slice(0, node.dataAddress.lastIndexOf(':')), Number(node.dataAddress.slice(node.dataAddress.lastIndexOf(':') + 1))];
    for (const garbage of [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.alloc(4096, 0xff), Buffer.from([0, 0, 0, 0])]) {
      const sock = connect({ host, port });
      await new Promise<void>((resolve) => {
        sock.on('connect', () => sock.end(garbage));
        sock.on('error', () => resolve());
        sock.on('close', () => resolve());
        sock.resume();
      });
    }
    const bytes = Buffer.alloc(5000, 4);
    const f = fragment('after-garbage', 1n, bytes);
    await client.put(f.id, f.header, bytes);
    expect((await client.get(f.id))?.bytes.equals(bytes)).toBe(true);
  });

  test('health, readiness and metrics over HTTP', async () => {
    const { client, node } = await start();
    const bytes = Buffer.alloc(100, 5);
    const f = fragment('m', 1n, bytes);
    await client.put(f.id, f.header, bytes);
    await client.get(f.id);
    expect((await fetch(`${node.adminUrl}/healthz`)).status).toBe(200);
    expect((await fetch(`${node.adminUrl}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/tw_storage_requests_total\{op="put",outcome="ok"\} 1/);
    expect(metrics).toMatch(/tw_storage_requests_total\{op="get",outcome="ok"\} 1/);
    expect(metrics).toMatch(/tw_storage_fragments 1/);
    expect(metrics).toMatch(/tw_storage_put_streams 0/);
    expect(metrics).toMatch(/tw_storage_unindexed_records \d+/);
    expect(metrics).toMatch(/tw_storage_dead_extents_dropped_total 0/);
    // The 100-byte put went inline (records up to 1 MiB do), or a slow inline write before it
    // paused that path: either way at least one inline write.
    expect(Number(/tw_storage_record_writes\{path="inline"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/tw_storage_record_writes\{path="pool"\} \d+/);
    expect(metrics).toMatch(/tw_storage_inline_write_pauses \d+/);
    // The get read its record inline (records up to 2 MiB do) unless a slow read paused that path.
    const inlineReads = Number(/tw_storage_record_reads\{path="inline"\} (\d+)/.exec(metrics)?.[1]);
    const pooledReads = Number(/tw_storage_record_reads\{path="pool"\} (\d+)/.exec(metrics)?.[1]);
    expect(inlineReads + pooledReads).toBe(1);
    expect(metrics).toMatch(/tw_storage_inline_read_pauses \d+/);
    expect(metrics).toMatch(/tw_storage_slow_cached_reads \d+/);
  });

  test('a bad inlineIo setting is refused, naming the field', () => {
    expect(() => parseConfig(StorageNodeConfigSchema, { dataDir: '/tmp/unused', inlineIo: { readBytesMax: -1 } })).toThrow(/inlineIo\.readBytesMax/);
    expect(() => parseConfig(StorageNodeConfigSchema, { dataDir: '/tmp/unused', inlineIo: { writeBytesMax: 1024 ** 3 } })).toThrow(/inlineIo\.writeBytesMax/);
  });

  test('inlineIo 0 sends every record write and read to the thread pool', async () => {
    const { client, node } = await start({ inlineIo: { writeBytesMax: 0, readBytesMax: 0 } });
    const bytes = Buffer.alloc(100, 7);
    const f = fragment('pool', 1n, bytes);
    await client.put(f.id, f.header, bytes);
    expect((await client.get(f.id))?.bytes.equals(bytes)).toBe(true);
    const metrics = await (await fetch(`${node.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/tw_storage_record_writes\{path="inline"\} 0\n/);
    expect(Number(/tw_storage_record_writes\{path="pool"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(metrics).toMatch(/tw_storage_record_reads\{path="inline"\} 0\n/);
    expect(metrics).toMatch(/tw_storage_record_reads\{path="pool"\} 1\n/);
  });

  test('data survives a stop and a restart on the same folder', async () => {
    const { node, client, dir } = await start();
    const bytes = Buffer.alloc(70_000, 6);
    const f = fragment('durable', 5n, bytes);
    await client.put(f.id, f.header, bytes);
    await node.stop();
    const config = parseConfig(StorageNodeConfigSchema, { dataDir: dir, listen: { port: 0 }, admin: { port: 0 }, extentSizeBytes: 4 * 1024 * 1024, reserveBytes: 0 }) as StorageNodeConfig;
    const again = await startStorageNode(config, { logger: quiet });
    cleanups.push(() => again.stop());
    const t = tcpTransport()({});
    cleanups.push(() => t.close());
    const c = new FragmentClient(await t.dial(again.dataAddress));
    expect((await c.get(f.id))?.bytes.equals(bytes)).toBe(true);
  });
});
