import { defineErrors } from '@tw/errors';

export const engineProtocolErrors = defineErrors('@tw/engine-protocols', {
  TW_RESP_PROTOCOL: {
    description: 'A RESP client sent bytes that redis-server refuses as a protocol error; details.replyText holds the exact error Redis answers. Send it, then close the connection.',
  },
  TW_RESP_LIMIT: {
    description: 'A RESP command passed a bound (bulk string over 512 MiB, more than 1M arguments, a line over 64 KiB, a command over 1 GiB, or the smaller bounds before AUTH); details.replyText is Redis\'s answer (null: close without a reply). Close the connection.',
  },
  TW_RESP_REPLY: {
    description: 'A RESP reply read by the client side is malformed or passes a bound: the server is not speaking RESP2. Close the connection.',
  },
  TW_RESP_ABORTED: {
    description: 'A RESP command was abandoned because its caller signal aborted (connection closed, shutdown).',
    retryable: true,
  },
  TW_LMCACHE_WIRE_COMMAND: {
    description: 'An lm:// request header carries a command number LMCache does not define (1 PUT, 2 GET, 3 EXIST, 4 LIST, 5 HEALTH). Close the connection: the stream cannot be re-synchronised.',
  },
  TW_LMCACHE_WIRE_LENGTH: {
    description: 'An lm:// header announces a payload length that is negative or over 512 MiB. Close the connection.',
  },
  TW_LMCACHE_WIRE_KEY: {
    description: 'The key field of an lm:// request is not UTF-8, or is empty once its padding is stripped, or a key to encode is over 150 bytes.',
  },
  TW_LMCACHE_WIRE_FIELD: {
    description: 'A field given to an lm:// encoder is not an int32, or a shape does not have exactly four dimensions.',
  },
});
