export { fragmentProtocolErrors } from './errors.js';
export * from './limits.js';
export { type FragmentId, encodeFragmentId, encodeKeyPrefix, decodeFragmentId, fragmentIdKeyHash } from './fragment-id.js';
export {
  PROTOCOL_VERSION,
  Op,
  type OpCode,
  type FragmentRequest,
  type FragmentReply,
  type CapacityInfo,
  type ListEntry,
  encodeRequest,
  decodeRequest,
  encodeReply,
  decodeReply,
} from './messages.js';
export { type FragmentStore, type FragmentHandlerHooks, type ReadBufferPool, createFragmentHandler, checkFragmentPayload } from './handler.js';
export { type FetchedFragment, FragmentClient } from './client.js';
