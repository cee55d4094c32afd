/**
 * Profiling driver for the coordinator benchmark (not run by `npm run bench`): starts the same
 * 3-process group, runs one commit load (and lookups), then stops the group cleanly so that
 * per-process `--cpu-prof` profiles get written.
 *
 *   node --conditions=tw-source --import tsx bench/lib/coordinator-profile.ts B C SECONDS [PROFDIR] [spans]
 *
 * With PROFDIR the coordinators preload coordinator-spans.ts and write a CPU profile of the load
 * (commits, then lookups; only lookups with `lookup`) to PROFDIR/PID.cpuprofile; with `spans`
 * they print timing spans. Prints the leader's pid and the measured rates.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoordinatorClient } from '@tw/rpc';
import { CoordinatorGroup } from './coordinator-cluster.js';

const here = dirname(fileURLToPath(import.meta.url));
const [bArg, cArg, secArg, profDir, spans] = process.argv.slice(2);
/** `lookup` as the last argument profiles only the lookup phase. */
const lookupOnly = spans === 'lookup';
const B = Number(bArg ?? 64);
const C = Number(cArg ?? 64);
const seconds = Number(secArg ?? 5);
const opts: string[] = [];
if (profDir) process.env['TW_CPU_PROF_DIR'] = profDir;
if (spans === 'spans' || profDir) opts.push('--import', 'tsx', '--import', join(here, 'coordinator-spans.ts'));
process.env['NODE_OPTIONS'] = opts.join(' ');
/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (100 Hz)
}
const NODES = ['sn-0', 'sn-1', 'sn-2', 'sn-3', 'sn-4', 'sn-5', 'sn-6', 'sn-7'];

const group = await CoordinatorGroup.start({ size: 3, tickMs: 100, electionTicks: 10, extra: { pgCount: 4096, redundancy: 'ec:4+2', ...(JSON.parse(process.env['TW_PROFILE_EXTRA'] ?? '{}') as Record<string, unknown>) } });
delete process.env['NODE_OPTIONS'];
const clients = Array.from({ length: 4 }, () => new CoordinatorClient(group.addresses, { attemptsMax: 200, backoffMs: 10, backoffMaxMs: 100, deadlineMs: 20_000 }));
try {
  const leader = await group.leader();
  process.stderr.write(`leader: id ${leader.id} pid ${leader.child?.pid}\n`);
  for (let i = 0; i < NODES.length; i++) {
    await clients[0]!.call('registerNode', {
      node: { nodeId: NODES[i]!, dataAddress: `127.0.0.1:${7500 + i}`, adminUrl: '', failureDomain: [`host-${i}`], weight: 1, state: 'up', capacityBytes: '0', usedBytes: '0' },
      requestId: { clientId: 'prof-admin', seq: String(i + 1) },
    });
  }
  const signalAll = (): void => {
    if (profDir) for (const m of group.members) m.child?.kill('SIGUSR2');
  };
  if (!lookupOnly) signalAll();
  let k = 0;
  const keys: Buffer[] = [];
  let done = 0;
  const lat: number[] = [];
  let stop = false;
  const t0 = performance.now();
  let cpu0: number[] = [];
  let self0 = process.cpuUsage();
  setTimeout(() => {
    cpu0 = group.members.map((m) => cpuSeconds(m.child?.pid));
    self0 = process.cpuUsage();
  }, 2000);
  await Promise.all(
    Array.from({ length: C }, async (_, w) => {
      let seq = 0;
      while (!stop) {
        const blocks = Array.from({ length: B }, (_, i) => {
          const key = Buffer.from(`llama-3.1-8b@0@${(k++).toString(16).padStart(16, '0')}${'f'.repeat(16)}`, 'latin1');
          if (keys.length < 100_000) keys.push(key);
          return { key, sizeBytes: '33554432', checksum: '1', redundancy: '', fragmentNodes: NODES.slice(i % 3, (i % 3) + 6), layout: null, ttlMs: '0', pinned: false, version: '0' };
        });
        const t = performance.now();
        await clients[w % 4]!.call('commitBlocks', { namespace: 'default', blocks, requestId: { clientId: `prof-w${w}`, seq: String(++seq) }, token: '' });
        if (t - t0 > 2000) {
          // the first 2 s warm up
          lat.push(performance.now() - t);
          done += B;
        }
        if (performance.now() - t0 > 2000 + seconds * 1000) stop = true;
      }
    }),
  );
  const s = (performance.now() - t0 - 2000) / 1000;
  const cpu = group.members.map((m, i) => cpuSeconds(m.child?.pid) - cpu0[i]!);
  const selfUse = process.cpuUsage(self0);
  const clientCpu = (selfUse.user + selfUse.system) / 1e6;
  const totalCpu = cpu.reduce((a, b) => a + b, 0) + clientCpu;
  process.stderr.write(
    `cpu seconds in the window: coordinators ${cpu.map((c, i) => `${group.members[i]!.id}${group.members[i] === leader ? '(leader)' : ''}=${c.toFixed(2)}`).join(' ')} client=${clientCpu.toFixed(2)}; ` +
      `${((1e6 * totalCpu) / Math.max(1, done)).toFixed(0)} cpu-us per block in all, ${((1e6 * (cpu[group.members.indexOf(leader)] ?? NaN)) / Math.max(1, done)).toFixed(0)} on the leader\n`,
  );
  lat.sort((a, b) => a - b);
  process.stderr.write(`commits: ${(done / s).toFixed(0)} blocks/s, ${(lat.length / s).toFixed(0)} rpc/s, rpc p50 ${lat[lat.length >> 1]?.toFixed(1)} ms\n`);
  if (lookupOnly) signalAll();
  const lk: number[] = [];
  for (let r = 0; r < 300 && keys.length >= 1024; r++) {
    const start = (r * 7919) % (keys.length - 1023);
    const t = performance.now();
    await clients[0]!.call('lookupPrefix', { namespace: 'default', keys: keys.slice(start, start + 1024), token: '', includeRecords: true });
    lk.push(performance.now() - t);
  }
  lk.sort((a, b) => a - b);
  signalAll();
  await new Promise((r) => setTimeout(r, 1500));
  process.stderr.write(`lookup 1024: p50 ${lk[lk.length >> 1]?.toFixed(1)} ms\n`);
} finally {
  for (const c of clients) c.close();
  await group.stop();
}
