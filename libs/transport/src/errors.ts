import { defineErrors } from '@tw/errors';

/** Error codes of every transport backend. Callers branch on `code`; messages are for humans. */
export const transportErrors = defineErrors('@tw/transport', {
  TW_TRANSPORT_ABORTED: {
    description: 'The call was aborted by its AbortSignal; a late response is discarded. The request may still have reached the peer.',
  },
  TW_TRANSPORT_CONNECT_FAILED: {
    description: 'Could not connect to the peer (refused, unreachable, partitioned). Retry later or pick another node.',
    retryable: true,
  },
  TW_TRANSPORT_CONNECTION_CLOSED: {
    description: 'The connection closed (peer died, reset, or sent garbage) before the response arrived; the request may or may not have been executed.',
    retryable: true,
  },
  TW_TRANSPORT_CLOSED: {
    description: 'The transport, peer or listener was closed locally; no new calls are accepted.',
  },
  TW_TRANSPORT_FRAME_TOO_LARGE: {
    description: 'A request or response payload is larger than the maximum frame size of the sender or the receiver; nothing was executed.',
  },
  TW_TRANSPORT_HEADER_TOO_LARGE: {
    description: 'A request or response header (the small encoded op) is larger than the header limit.',
  },
  TW_TRANSPORT_MALFORMED_FRAME: {
    description: 'The peer sent bytes that are not a valid frame (bad magic, version, type or lengths); the connection was closed.',
  },
  TW_TRANSPORT_DESTINATION_TOO_SMALL: {
    description: 'The response payload does not fit the caller-supplied destination buffer; the payload was discarded, the connection stays usable.',
  },
  TW_TRANSPORT_REMOTE_ERROR: {
    description: 'The remote handler failed with an error that carries no TwError code (a bug on the peer); its message is included.',
  },
  TW_TRANSPORT_QUEUE_FULL: {
    description: 'Too many requests are waiting for a connection slot to this peer; back off and retry.',
    retryable: true,
  },
  TW_TRANSPORT_SERVER_BUSY: {
    description: 'The server holds its maximum of request payload bytes (requests received, handlers still running); this request was refused unexecuted. Back off and retry.',
    retryable: true,
  },
  TW_TRANSPORT_BAD_ADDRESS: {
    description: 'The address is not valid for this transport (TCP wants host:port).',
  },
  TW_TRANSPORT_BAD_OPTION: {
    description: 'A transport option is out of range (limits, pool sizes, knobs); the message names it.',
  },
  TW_TRANSPORT_LISTEN_FAILED: {
    description: 'Could not listen on the address (in use, not permitted).',
  },
});

export type TransportErrorCode = keyof typeof transportErrors.specs;
