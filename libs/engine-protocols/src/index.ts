export { engineProtocolErrors } from './errors.js';
export * from './limits.js';
export { parseRedisInteger } from './redis-integer.js';
export { splitInlineArgs } from './inline-args.js';
export { RespRequestParser, respErrorReply, type RespCommand, type RespRequestParserOptions } from './resp-request-parser.js';
export {
  RESP_EMPTY_ARRAY,
  RESP_NOAUTH,
  RESP_NOT_INTEGER,
  RESP_NULL_ARRAY,
  RESP_NULL_BULK,
  RESP_OK,
  RESP_PONG,
  RESP_SYNTAX_ERROR,
  RESP_WRONGPASS,
  RESP_WRONGTYPE,
  encodeArrayHeader,
  encodeBulkString,
  encodeCommand,
  encodeError,
  encodeInteger,
  encodeReply,
  encodeSimpleString,
  type RespBulkValue,
  type RespReply,
} from './resp-reply.js';
export { RespReplyParser } from './resp-reply-parser.js';
export { RespSession, type RespAuthOutcome, type RespBackend, type RespSetOptions, type RespSetOutcome } from './resp-backend.js';
export { RESP_COMPAT_REDIS_VERSION, dispatch, respCommandNames, type RespDispatchOptions, type RespDispatchResult } from './resp-dispatch.js';
export {
  LM_CODE,
  LM_COMMAND,
  LM_DTYPE,
  LM_FAIL_REPLY,
  LM_LOCATION,
  LM_MEMORY_FORMAT,
  LM_SUCCESS_REPLY,
  LmReplyParser,
  LmRequestParser,
  decodeLmReplyHeader,
  decodeLmRequestHeader,
  encodeLmGetReply,
  encodeLmReplyHeader,
  encodeLmRequestHeader,
  lmStatusReply,
  type LmCommand,
  type LmReply,
  type LmReplyHeader,
  type LmRequest,
  type LmRequestHeader,
  type LmShape,
} from './lmcache-protocol.js';
