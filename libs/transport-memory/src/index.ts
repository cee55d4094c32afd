export { memoryTransport, MemoryTransport, type MemoryTransportOptions, type MemoryTransportComponents } from './memory-transport.js';
export { memoryNetwork, MemoryNetwork, type MemoryNetworkOptions, type MemoryNetworkKnobs, type MemoryNetworkComponents } from './memory-network.js';
export { seededRandom } from './random.js';
