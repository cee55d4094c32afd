/**
 * Bounds shared by every transport backend. Backends take these as defaults and let options
 * lower them (never raise them past the hard caps).
 */

/** Largest request or response payload accepted by default: the largest fragment (64 MiB). */
export const PAYLOAD_BYTES_MAX_DEFAULT = 64 * 1024 * 1024;

/** Hard cap on any payload; also what the wire format's u32 length allows with headroom. */
export const PAYLOAD_BYTES_MAX_CAP = 1024 * 1024 * 1024;

/** Largest header (the small encoded op); headers are copied, payloads are not. */
export const HEADER_BYTES_MAX = 64 * 1024;

/** Requests in flight on one connection (sent, response not yet received). */
export const INFLIGHT_PER_CONNECTION_MAX_DEFAULT = 256;

/**
 * Request payload bytes in flight on one connection. A single request larger than this is still
 * admitted when the connection has nothing else in flight, so a 64 MiB payload never deadlocks.
 */
export const INFLIGHT_BYTES_PER_CONNECTION_MAX_DEFAULT = 64 * 1024 * 1024;

/** Connections in the pool to one peer. */
export const CONNECTIONS_PER_PEER_MAX_DEFAULT = 2;

/** Requests waiting for a connection slot to one peer before calls are refused with QUEUE_FULL. */
export const WAITING_PER_PEER_MAX = 16_384;

/** Requests executing concurrently in server handlers per connection; beyond it reading pauses. */
export const SERVER_INFLIGHT_PER_CONNECTION_MAX_DEFAULT = 256;

/** Connections a listener accepts at once; further connections are closed at accept. */
export const CONNECTIONS_PER_LISTENER_MAX = 4096;

/** Largest encoded remote error (code, message, details) carried back to the caller. */
export const REMOTE_ERROR_BYTES_MAX = 4096;
