import { connect } from 'node:net';
// Backends run the shared suite from their tests (libp2p's interface-compliance-tests pattern); the
// boundary rule forbids adapter -> testing for sources, which this test-only import is not.
import { transportComplianceSuite, type RawConnection } from '@tw/transport-compliance';
import { tcpTransport } from '../src/index.js';
import { decodeFramePrefix } from '../src/frame.js';

/** A plain socket to the listener; on close, decodes the error frame the server sent, if any. */
function rawConnect(address: string): Promise<RawConnection> {
  const colon = address.lastIndexOf(':');
  const socket = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
  const received: Buffer[] = [];
  socket.on('data', (c: Buffer) => received.push(c));
  socket.on('error', () => undefined);
  const closed = new Promise<{ errorCode: string | undefined }>((resolve) =>
    socket.once('close', () => {
      const all = Buffer.concat(received);
      let errorCode: string | undefined;
      try {
        const prefix = decodeFramePrefix(all.subarray(0, 16));
        const header = all.subarray(16, 16 + prefix.headerBytes);
        errorCode = (JSON.parse(header.toString()) as { code?: string }).code;
      } catch {
        errorCode = undefined;
      }
      resolve({ errorCode });
    }),
  );
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve({
        write: (bytes) => socket.write(bytes),
        closed,
        destroy: () => socket.destroy(),
      }),
    );
  });
}

transportComplianceSuite({
  name: 'tcp',
  supports: { rawInjection: true, intoIsView: true },
  create: (options) => tcpTransport(options)({}),
  listenAddress: () => '127.0.0.1:0',
  rawConnect,
});
