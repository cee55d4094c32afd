/**
 * Baseline for data-path benchmarks: the same bytes over plain node:net between two processes,
 * with nothing but a 4-byte length prefix per message. `sink` mode reads messages and acks each
 * with one byte; `source` mode answers each 4-byte request (a size) with that many bytes.
 * Started as a child process by the benchmarks (`node --import tsx raw-tcp-peer.ts`).
 */
import { createServer } from 'node:net';

// One source for every connection, filled (and so faulted in) before the port is announced: a
// per-connection allocation would land inside the measured window.
const sourceBytes = Buffer.alloc(64 * 1024 * 1024, 0x5a);
const ack = Buffer.from([1]);

const server = createServer({ noDelay: true }, (sock) => {
  let buf: Buffer = Buffer.alloc(0);
  let need = -1;
  sock.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      if (need === -1) {
        if (buf.length < 5) return;
        const mode = buf[0];
        const n = buf.readUInt32LE(1);
        buf = buf.subarray(5);
        if (mode === 2) {
          // source: reply with n bytes, length-prefixed
          const head = Buffer.allocUnsafe(4);
          head.writeUInt32LE(n);
          sock.cork();
          sock.write(head);
          sock.write(sourceBytes.subarray(0, n));
          sock.uncork();
          continue;
        }
        need = n;
      }
      if (buf.length < need) {
        need -= buf.length;
        buf = Buffer.alloc(0);
        return;
      }
      buf = buf.subarray(need);
      need = -1;
      sock.write(ack);
    }
  });
  sock.on('error', () => sock.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0 })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
