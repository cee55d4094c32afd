import { defineErrors } from '@tw/errors';

/**
 * Error codes of the gateway's native protocol and its client. A call that the gateway refused
 * fails with the gateway's own code (TW_GATEWAY_*, TW_GATEWAY_APP_*, TW_KEY_*); transport
 * failures keep their TW_TRANSPORT_* codes; these are the protocol's and the client's own.
 */
export const nativeErrors = defineErrors('@tw/client', {
  TW_NATIVE_MALFORMED: {
    description: 'A native-protocol request or reply is malformed (bad lengths, flags, reserved bytes, trailing bytes, unknown status); the message says what. The gateway answers it with this code and keeps serving the connection.',
  },
  TW_NATIVE_VERSION: { description: 'The peer speaks a native-protocol version this build does not (the version byte of every message).' },
  TW_NATIVE_UNKNOWN_OP: { description: 'The request names an op this gateway does not serve; nothing was done.' },
  TW_NATIVE_VALUE_TOO_LARGE: { description: 'A value is larger than the protocol allows (512 MiB); split it. Nothing was sent or stored.' },
  TW_NATIVE_TOO_MANY_KEYS: { description: 'A lookupPrefix names more keys than the gateway takes in one call (65,536); split the call.' },
  TW_NATIVE_BAD_INPUT: { description: 'A client call got an invalid argument (token too long, value not bytes, ttl out of range); the message names it. Nothing was sent.' },
  TW_NATIVE_CLOSED: { description: 'The client was closed; no new calls are accepted.' },
});

export type NativeErrorCode = keyof typeof nativeErrors.specs;
