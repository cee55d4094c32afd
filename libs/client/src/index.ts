/**
 * @tw/client: the gateway's native binary protocol (wire messages, shared with the gateway's
 * native front-end) and TwClient, the TypeScript client that speaks it over the data transport.
 */
export { nativeErrors, type NativeErrorCode } from './errors.js';
export * from './limits.js';
export {
  NATIVE_PROTOCOL_VERSION,
  NATIVE_OP_NAMES,
  NativeOp,
  NativeStatus,
  NativeFlag,
  type NativeOpCode,
  type NativeCredentials,
  type NativeRequest,
  type NativeReply,
  type NativeErrorReply,
  type NativeServerLimits,
  encodeRequest,
  decodeRequest,
  encodeReply,
  decodeReply,
  encodeLookupKeys,
  decodeLookupKeys,
  encodeScatter,
  decodeScatter,
  validateDeliverFileName,
  type ScatterEntry,
  errorReplyOf,
  errorOfReply,
} from './messages.js';
export {
  TwClient,
  connectClient,
  type ConnectOptions,
  type CallOptions,
  type ClientPutOptions,
  type ClientGetOptions,
  type ClientLookupOptions,
  type ClientLookupResult,
  type ClientDeliverOptions,
  type ClientDeliverResult,
  type ClientKey,
} from './client.js';
