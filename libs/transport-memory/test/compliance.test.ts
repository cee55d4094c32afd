// Backends run the shared suite from their tests (libp2p's interface-compliance-tests pattern); the
// boundary rule forbids adapter -> testing for sources, which this test-only import is not.
import { transportComplianceSuite } from '@tw/transport-compliance';
import { memoryNetwork, memoryTransport, type MemoryTransport } from '../src/index.js';

// One network for the file; every test gets fresh transports (fresh node names) on it.
const network = memoryNetwork({ seed: 7 });

transportComplianceSuite({
  name: 'memory',
  supports: { rawInjection: true, intoIsView: true },
  create: (options) => memoryTransport(options)({ network }),
  listenAddress: () => 'mem:0',
  rawConnect: async (address) => {
    const t = memoryTransport()({ network }) as MemoryTransport;
    return t.rawConnect(address);
  },
});

// The same suite with random latency on: the contract holds on a slower network. (Reordering
// breaks per-connection order on purpose, so it is tested in memory-network.test.ts.)
const slow = memoryNetwork({ seed: 11, latencyMs: { min: 0, max: 2 } });
transportComplianceSuite({
  name: 'memory (latency 0-2 ms)',
  supports: { rawInjection: true, intoIsView: true },
  create: (options) => memoryTransport(options)({ network: slow }),
  listenAddress: () => 'slow:0',
  rawConnect: async (address) => (memoryTransport()({ network: slow }) as MemoryTransport).rawConnect(address),
});
