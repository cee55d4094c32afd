/**
 * Issue 5, multi-process fault test: three tw-coordinator processes on loopback, Raft traffic
 * through a fault proxy. Concurrent clients commit, look up and delete blocks while the leader is
 * SIGKILLed and restarted (on the same data dir) five times; then the leader is cut off by the
 * proxy and a client pinned to it must fail to commit while the majority goes on; after healing,
 * every acknowledged commit (not deleted since) is present on every coordinator and the whole
 * recorded history is linearizable (KV model, per key: commit = put, delete = delete,
 * lookup = get; a call that failed with a retryable error or timed out is an open operation that
 * may or may not have taken effect).
 *
 * The workload is seeded (`COORD_FAULT_SEED=7` replays seed 7's choices; process timing is not
 * replayable). On failure the coordinators' logs are written under a temp folder named in the
 * error, which is kept.
 */
import { mkdtempSync } from 'node:fs';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { isTwError, type TwError } from '@tw/errors';
import { CoordinatorClient, type BlockCommitMsg } from '@tw/rpc';
import { HistoryRecorder, type KvInput, type KvOutput, checkLinearizable, describeFailure, kvModel } from '@tw/testkit';
import { CoordinatorGroup, FaultProxy, killAll, removeTempDirs, rng } from '../src/index.js';

const SEED = Number(process.env['COORD_FAULT_SEED'] ?? 5);
/**
 * COORD_FAULT_SNAPSHOTS=1 compacts the Raft log every 50 entries (keeping 10), so restarted
 * coordinators catch up by snapshot while clients keep calling them. Off by default because that
 * mode hits two known coordinator bugs (reported to the lead), depending on timing: a coordinator
 * installing a snapshot answers clients with the non-retryable TW_BLOCKMAP_RESTORE_INCOMPLETE, and
 * a snapshot stream cut short by the sender's SIGKILL is installed anyway and stops that
 * coordinator's Raft node for good. The default keeps the Raft log whole.
 */
const SNAPSHOTS = process.env['COORD_FAULT_SNAPSHOTS'] === '1';
const WORKERS = 4;
const SHARED_KEYS = 6;
/** Hard bounds on the workload, whatever happens to the group. */
const OPS_PER_WORKER_MAX = 2500;
const WORKLOAD_MS_MAX = 100_000;
const KILLS = 5;
/** Acknowledged operations required between two kills (the group made progress). */
const ACKS_BETWEEN_KILLS = 20;
const PROGRESS_TIMEOUT_MS = 30_000;
/** Per-call bound for workload calls (the client's own retries happen inside it). */
const CALL_TIMEOUT_MS = 10_000;

let group: CoordinatorGroup | undefined;
const clients: CoordinatorClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await group?.close();
  group = undefined;
  await killAll();
});
afterAll(() => removeTempDirs());

const NS = 'default';
const FRAGMENT_NODES = ['sn-0', 'sn-1', 'sn-2'];

function block(key: string, checksum: string): BlockCommitMsg {
  return { key: Buffer.from(key), sizeBytes: '4096', checksum, redundancy: 'ec:2+1', fragmentNodes: FRAGMENT_NODES, layout: null, ttlMs: '0', pinned: false, version: '0' };
}

function client(addresses: readonly string[], opts: { attemptsMax: number; deadlineMs: number }): CoordinatorClient {
  const c = new CoordinatorClient(addresses, { ...opts, backoffMs: 20, backoffMaxMs: 300 });
  clients.push(c);
  return c;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What the test knows about one unique key (written by one worker only). */
interface UniqueKey {
  value: string;
  commit: 'acked' | 'open';
  del: 'none' | 'open' | 'acked';
}

describe('fault proxy', () => {
  /** An echo server on loopback that counts the bytes it received. */
  async function echoServer(): Promise<{ address: string; received: () => number; close: () => Promise<void> }> {
    let received = 0;
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
      s.on('data', (d: Buffer) => (received += d.length));
      s.pipe(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      address,
      received: () => received,
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      },
    };
  }

  async function dial(address: string): Promise<Socket> {
    const [host, port] = address.split(':');
    const s = connect({ host: host!, port: Number(port) });
    s.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return s;
  }

  function readBytes(s: Socket, n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const parts: Buffer[] = [];
      let got = 0;
      const onData = (d: Buffer): void => {
        parts.push(d);
        got += d.length;
        if (got >= n) {
          s.off('data', onData);
          resolve(Buffer.concat(parts));
        }
      };
      s.on('data', onData);
      s.once('close', () => reject(new Error(`closed after ${got} of ${n} bytes`)));
    });
  }

  /** `p`, or a rejection naming `what` after 5 s (the suite's own timeout is long). */
  function within<T>(what: string, p: Promise<T>): Promise<T> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 5000)));
    return Promise.race([p, timeout]).finally(() => clearTimeout(t));
  }

  async function until(what: string, cond: () => boolean): Promise<void> {
    for (let i = 0; !cond(); i++) {
      if (i >= 500) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  test('forwards both ways with backpressure; cut black-holes a member, heal restores it', async () => {
    const echo = await echoServer();
    const proxy = await FaultProxy.start(new Map([[1, echo.address], [2, echo.address], [3, echo.address]]));
    try {
      const a = await dial(proxy.address(1, 2));
      // 8 MiB echoed through the proxy arrives whole and in order (backpressure, no loss).
      const payload = Buffer.alloc(8 * 1024 * 1024);
      for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
      const back = readBytes(a, payload.length);
      a.write(payload);
      expect((await within('the 8 MiB echo', back)).equals(payload)).toBe(true);

      // Cutting member 1 destroys its open connections and black-holes new ones, both directions.
      const closed = new Promise((r) => a.once('close', r));
      proxy.cut(1);
      await within('the cut connection to close', closed);
      expect([proxy.isBlocked(1, 2), proxy.isBlocked(2, 1), proxy.isBlocked(1, 3), proxy.isBlocked(3, 1), proxy.isBlocked(2, 3), proxy.isBlocked(3, 2)]).toEqual([true, true, true, true, false, false]);
      const before = echo.received();
      const b = await dial(proxy.address(2, 1));
      b.write('lost');
      await until('the proxy to drop 4 bytes', () => proxy.stats().find((l) => l.from === 2 && l.to === 1)!.bytesDropped === 4);
      expect(echo.received()).toBe(before);
      // The untouched link still passes.
      const c = await dial(proxy.address(2, 3));
      const cBack = readBytes(c, 5);
      c.write('hello');
      expect((await within('the echo on an untouched link', cBack)).toString()).toBe('hello');

      // Heal: black-holed connections are closed, new ones pass.
      const bClosed = new Promise((r) => b.once('close', r));
      proxy.heal();
      await within('the black-holed connection to close on heal', bClosed);
      const d = await dial(proxy.address(2, 1));
      const dBack = readBytes(d, 2);
      d.write('ok');
      expect((await within('the echo after heal', dBack)).toString()).toBe('ok');

      proxy.block(3, 2);
      expect([proxy.isBlocked(3, 2), proxy.isBlocked(2, 3)]).toEqual([true, false]);
      proxy.dropAll();
      expect(proxy.stats().every((l) => proxy.isBlocked(l.from, l.to))).toBe(true);
      const dClosed = new Promise((r) => d.once('close', r));
      await proxy.close();
      await within('close() to end connections', dClosed);
      c.destroy();
    } finally {
      await proxy.close();
      await echo.close();
    }
  });

  test('refuses non-loopback targets', async () => {
    await expect(FaultProxy.start(new Map([[1, '10.0.0.1:7400'], [2, '127.0.0.1:7401']]))).rejects.toThrow(/loopback/);
  });
});

describe('coordinator group under faults', () => {
  test(`SIGKILLed leaders, a cut-off minority, linearizable history (seed ${SEED})`, async () => {
    const t0 = Date.now();
    const phases: string[] = [];
    const phase = (what: string): void => {
      phases.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);
    };
    const g = await CoordinatorGroup.start({
      tickMs: 30,
      electionTicks: 10,
      config: { pgCount: 64, redundancy: 'ec:2+1', nodeTimeoutMs: 600_000, logLevel: 'info', ...(SNAPSHOTS ? { snapshotEveryEntries: 50, keepEntriesAfterSnapshot: 10 } : {}) },
    });
    group = g;
    phase('group started');
    const fail = (message: string): never => {
      const dir = mkdtempSync(join(tmpdir(), 'tw-coord-fault-logs-'));
      g.dumpLogs(dir);
      throw new Error(`seed ${SEED}: ${message}\nphases: ${phases.join('; ')}\ncoordinator logs: ${dir}`);
    };

    const admin = client(g.addresses, { attemptsMax: 60, deadlineMs: 3000 });
    for (let i = 0; i < FRAGMENT_NODES.length; i++) {
      await admin.call('registerNode', {
        node: { nodeId: FRAGMENT_NODES[i]!, dataAddress: `127.0.0.1:${7500 + i}`, adminUrl: '', failureDomain: [`host-${i}`], weight: 1, state: 'up', capacityBytes: '0', usedBytes: '0' },
        requestId: { clientId: 'fault-test-admin', seq: String(i + 1) },
      });
    }
    phase('storage nodes registered');

    const history = new HistoryRecorder<KvInput, KvOutput>();
    const unique = new Map<string, UniqueKey>();
    const unexpected: string[] = [];
    /** The last errors callers saw (bounded), and what each worker is doing, for failure reports. */
    const recentErrors: string[] = [];
    const doing: string[] = Array.from({ length: WORKERS }, () => 'idle');
    let failedCalls = 0;
    const noteError = (what: string, err: unknown): void => {
      failedCalls++;
      recentErrors.push(`${((Date.now() - t0) / 1000).toFixed(1)}s ${what}: ${isTwError(err) ? err.code : ''} ${(err as Error)?.message ?? String(err)}`);
      if (recentErrors.length > 12) recentErrors.shift();
      if (!isTwError(err) || (!err.retryable && err.code !== 'TW_RPC_ABORTED')) unexpected.push(`${what}: ${String(err)}`);
    };
    const failWithState = async (message: string): Promise<never> => {
      const state = await Promise.all(
        g.members.map(async (m) => {
          const [x, ready] = await Promise.all([g.metrics(m.id), g.readiness(m.id)]);
          return x === undefined ? `${m.id}: down or silent` : `${m.id}: leader=${x.get('tw_coordinator_is_leader')} term=${x.get('tw_coordinator_term')} commit=${x.get('tw_coordinator_commit_index')} applied=${x.get('tw_coordinator_applied_index')} readyz=${ready}`;
        }),
      );
      return fail(`${message}\nfailed calls ${failedCalls}; recent errors:\n  ${recentErrors.join('\n  ')}\nworkers: ${doing.join(' | ')}\ncoordinators: ${state.join('; ')}`);
    };
    let acks = 0;
    let openWrites = 0;
    let stop = false;
    const workloadDeadline = Date.now() + WORKLOAD_MS_MAX;

    const lookupOne = async (c: CoordinatorClient, clientNo: number, key: string, signal?: AbortSignal): Promise<string | null | undefined> => {
      const id = history.invoke(clientNo, { op: 'get', key });
      try {
        const res = await c.call('lookupPrefix', { namespace: NS, keys: [Buffer.from(key)], token: '', includeRecords: true }, signal ? { signal } : {});
        const value = res.hits > 0 ? res.records[0]!.checksum : null;
        history.complete(id, { value });
        return value;
      } catch (err) {
        history.discard(id); // a failed read has no effect
        noteError(`lookup ${key} (client ${clientNo})`, err);
        return undefined;
      }
    };

    const worker = async (w: number): Promise<void> => {
      const next = rng(SEED * 1000 + w);
      const c = client([...g.addresses.slice(w % 3), ...g.addresses.slice(0, w % 3)], { attemptsMax: 10, deadlineMs: 3000 });
      const clientId = `fault-worker-${SEED}-${w}`;
      const mine: string[] = [];
      let seq = 0;
      for (let n = 0; n < OPS_PER_WORKER_MAX && !stop && Date.now() < workloadDeadline; n++) {
        const r = next();
        doing[w] = `op ${n} since ${((Date.now() - t0) / 1000).toFixed(1)}s`;
        const signal = AbortSignal.timeout(CALL_TIMEOUT_MS);
        const requestId = { clientId, seq: String(++seq) };
        if (r < 0.35 || (r < 0.75 && r >= 0.7 && mine.length === 0)) {
          const key = `u/${w}/${n}`;
          const value = String((w + 1) * 10_000_000 + seq);
          const id = history.invoke(w, { op: 'put', key, value });
          unique.set(key, { value, commit: 'open', del: 'none' });
          try {
            await c.call('commitBlocks', { namespace: NS, blocks: [block(key, value)], requestId, token: '' }, { signal });
            history.complete(id, {});
            unique.get(key)!.commit = 'acked';
            mine.push(key);
            acks++;
          } catch (err) {
            openWrites++;
            noteError(`commit ${key}`, err);
          }
        } else if (r < 0.55) {
          const key = `s/${Math.floor(next() * SHARED_KEYS)}`;
          const value = String((w + 1) * 10_000_000 + seq);
          const id = history.invoke(w, { op: 'put', key, value });
          try {
            await c.call('commitBlocks', { namespace: NS, blocks: [block(key, value)], requestId, token: '' }, { signal });
            history.complete(id, {});
            acks++;
          } catch (err) {
            openWrites++;
            noteError(`commit ${key}`, err);
          }
        } else if (r < 0.75) {
          // Delete a shared key (r < 0.7) or one of this worker's acknowledged unique keys.
          const own = r >= 0.7;
          const key = own ? mine.splice(Math.floor(next() * mine.length), 1)[0]! : `s/${Math.floor(next() * SHARED_KEYS)}`;
          const id = history.invoke(w, { op: 'delete', key });
          if (own) unique.get(key)!.del = 'open';
          try {
            await c.call('deleteBlocks', { namespace: NS, keys: [Buffer.from(key)], requestId, token: '' }, { signal });
            history.complete(id, {});
            if (own) unique.get(key)!.del = 'acked';
            acks++;
          } catch (err) {
            openWrites++;
            noteError(`delete ${key}`, err);
          }
        } else {
          const key = next() < 0.5 || mine.length === 0 ? `s/${Math.floor(next() * SHARED_KEYS)}` : mine[Math.floor(next() * mine.length)]!;
          const v = await lookupOne(c, w, key, signal);
          if (v !== undefined) acks++;
        }
      }
    };

    const waitForProgress = async (what: string): Promise<void> => {
      const target = acks + ACKS_BETWEEN_KILLS;
      const deadline = Date.now() + PROGRESS_TIMEOUT_MS;
      while (acks < target) {
        if (Date.now() > deadline) await failWithState(`no progress ${what}: ${acks} acks, wanted ${target} within ${PROGRESS_TIMEOUT_MS} ms (open writes ${openWrites})`);
        await sleep(20);
      }
    };

    // --- Workload with the leader SIGKILLed and restarted KILLS times.
    const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
    const kills: string[] = [];
    try {
      for (let k = 0; k < KILLS; k++) {
        await waitForProgress(k === 0 ? 'before the first kill' : `after kill ${k}`);
        const leader = await g.findLeader(20_000).catch((err: unknown) => failWithState(`before kill ${k + 1}: ${(err as Error).message}`));
        const pid = g.member(leader.id).child?.pid;
        await g.kill(leader.id);
        phase(`killed leader ${leader.id} (term ${leader.term}, pid ${pid})`);
        await g.restart(leader.id).catch((err: unknown) => failWithState(`restart of coordinator ${leader.id} after kill ${k + 1}: ${(err as Error).message}`));
        phase(`restarted ${leader.id}`);
        kills.push(`${leader.id}@${leader.term}`);
      }
      await waitForProgress(`after kill ${KILLS}`);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    phase(`workload stopped: ${acks} acks, ${openWrites} open writes`);
    expect(kills).toHaveLength(KILLS);

    // --- Cut the leader off: a client pinned to it cannot commit; the majority can.
    const old = await g.findLeader(20_000).catch((err: unknown) => failWithState(`before the cut: ${(err as Error).message}`));
    const others = g.members.filter((m) => m.id !== old.id);
    g.proxy.cut(old.id);
    phase(`cut off leader ${old.id} (term ${old.term})`);
    const pinned = client([g.member(old.id).address], { attemptsMax: 3, deadlineMs: 2000 });
    const pinnedKeys: string[] = [];
    const pinnedCommit = async (attempt: number): Promise<void> => {
      const key = `p/${attempt}`;
      const value = String(90_000_000 + attempt);
      pinnedKeys.push(key);
      const id = history.invoke(100, { op: 'put', key, value });
      let err: unknown;
      try {
        await pinned.call('commitBlocks', { namespace: NS, blocks: [block(key, value)], requestId: { clientId: `fault-pinned-${SEED}`, seq: String(attempt + 1) }, token: '' }, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
      } catch (e) {
        err = e;
      }
      void id; // stays open: it may not be known whether it took effect
      if (err === undefined) fail(`a client pinned to the cut-off coordinator ${old.id} committed ${key}`);
      if (!isTwError(err) || !(err as TwError).retryable) fail(`the pinned commit failed without a retryable coded error: ${String(err)}`);
      phase(`pinned commit ${attempt} refused: ${(err as TwError).code}`);
    };
    await pinnedCommit(0); // at once, while it may still believe it leads
    const majority = client(others.map((m) => m.address), { attemptsMax: 30, deadlineMs: 3000 });
    const newLeader = await g.findLeader(20_000, others.map((m) => m.id)).catch((err: unknown) => failWithState(`majority ${others.map((m) => m.id).join(',')} with ${old.id} cut off: ${(err as Error).message}`));
    expect(newLeader.id).not.toBe(old.id);
    for (let i = 0; i < 5; i++) {
      const key = `m/${i}`;
      const value = String(80_000_000 + i);
      const id = history.invoke(101, { op: 'put', key, value });
      await majority
        .call('commitBlocks', { namespace: NS, blocks: [block(key, value)], requestId: { clientId: `fault-majority-${SEED}`, seq: String(i + 1) }, token: '' })
        .catch((err: unknown) => failWithState(`the majority could not commit ${key} with ${old.id} cut off: ${String(err)}`));
      history.complete(id, {});
      unique.set(key, { value, commit: 'acked', del: 'none' });
    }
    phase(`majority (leader ${newLeader.id}) committed 5 blocks`);
    await pinnedCommit(1); // after the majority moved on
    // Check-quorum: the cut-off leader steps down by itself (bounded wait).
    for (let i = 0; ; i++) {
      const m = await g.metrics(old.id);
      if (m?.get('tw_coordinator_is_leader') === 0) break;
      if (i >= 200) fail(`coordinator ${old.id} still claims leadership 10 s after the majority elected ${newLeader.id}`);
      await sleep(50);
    }
    const dropped = g.proxy.stats().filter((l) => l.from === old.id || l.to === old.id).reduce((a, l) => a + l.bytesDropped, 0);
    g.proxy.heal();
    phase(`healed (${dropped} bytes dropped on the cut links)`);
    // Raft traffic really went through the proxy, on every directed link.
    for (const l of g.proxy.stats()) expect(l.bytesForwarded, `link ${l.from} -> ${l.to}`).toBeGreaterThan(0);

    // --- Every coordinator answers with every acknowledged commit that was not deleted since.
    const expectPresent = [...unique].filter(([, u]) => u.commit === 'acked' && u.del === 'none').map(([k]) => k);
    const expectAbsent = [...unique].filter(([, u]) => u.del === 'acked').map(([k]) => k);
    for (const m of g.members) {
      const c = client([m.address], { attemptsMax: 40, deadlineMs: 3000 });
      for (let off = 0; off < expectPresent.length; off += 1024) {
        const keys = expectPresent.slice(off, off + 1024);
        // One read of many keys: each key it answers for is a get over the call's interval.
        const ids = keys.map((key) => history.invoke(200 + m.id, { op: 'get', key }));
        const res = await c
          .call('lookupPrefix', { namespace: NS, keys: keys.map((k) => Buffer.from(k)), token: '', includeRecords: true })
          .catch((err: unknown) => failWithState(`final lookup on coordinator ${m.id} failed: ${String(err)}`));
        ids.forEach((id, i) => (i <= res.hits ? history.complete(id, { value: i < res.hits ? res.records[i]!.checksum : null }) : history.discard(id)));
        if (res.hits < keys.length) {
          const missing = keys[res.hits]!;
          fail(`coordinator ${m.id} lost acknowledged commit ${missing} (value ${unique.get(missing)!.value}); ${res.hits} of ${keys.length} leading keys present`);
        }
        res.records.forEach((r, i) => {
          if (r.checksum !== unique.get(keys[i]!)!.value) fail(`coordinator ${m.id}: ${keys[i]} has checksum ${r.checksum}, acknowledged ${unique.get(keys[i]!)!.value}`);
        });
      }
      for (const key of [...expectAbsent, ...pinnedKeys]) {
        const v = await lookupOne(c, 200 + m.id, key);
        if (v === undefined) fail(`coordinator ${m.id}: lookup of ${key} failed after healing`);
        if (v !== null) fail(`coordinator ${m.id}: ${key} is present (${v}) but was ${key.startsWith('p/') ? 'only proposed to the cut-off minority' : 'deleted (acknowledged)'}`);
      }
      for (let k = 0; k < SHARED_KEYS; k++) {
        if ((await lookupOne(c, 200 + m.id, `s/${k}`)) === undefined) fail(`coordinator ${m.id}: lookup of s/${k} failed after healing`);
      }
      phase(`coordinator ${m.id} checked`);
    }
    phase(`checked ${expectPresent.length} present, ${expectAbsent.length + pinnedKeys.length} absent keys on every coordinator`);

    if (unexpected.length > 0) await failWithState(`calls failed with non-retryable errors: ${unexpected.slice(0, 10).join('; ')}`);
    const report = checkLinearizable(kvModel, history.history(), { maxSteps: 20_000_000, timeoutMs: 60_000, now: Date.now });
    phase(`linearizability: ${report.result} in ${report.steps} steps over ${report.partitions.length} keys (${history.history().length} ops)`);
    if (report.result !== 'ok') fail(describeFailure(kvModel, report));
    const snapshots = g.members.flatMap((m) => m.incarnations).reduce((a, c) => a + c.logs.filter((l) => l['msg'] === 'installed snapshot').length, 0);
    console.log(`coordinator fault test, seed ${SEED}: kills ${kills.join(' ')}, snapshots installed ${snapshots}\n  ${phases.join('\n  ')}`);
  });
});
