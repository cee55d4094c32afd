/** Bounds and sizes specific to the TCP backend (shared ones are in @tw/transport's limits). */

/** Scratch buffer the client socket reads frame prefixes, headers and small payloads into. */
export const SCRATCH_BYTES = 256 * 1024;

/**
 * Payload bytes still to come above which the client socket reads straight into the payload's
 * destination (no copy); below it, a read into scratch and a copy costs fewer syscalls.
 */
export const DIRECT_READ_MIN_BYTES = 64 * 1024;

/**
 * Read size while expecting a frame prefix after a large payload: room for the prefix, a header
 * and a little payload, so the rest of a large payload is read straight into its destination.
 */
export const PREFIX_READ_BYTES = 4096;

/** Unflushed reply bytes on a server connection above which the server stops reading requests. */
export const SERVER_WRITE_BUFFER_HIGH_BYTES = 64 * 1024 * 1024;

/**
 * Request payload bytes one server connection holds (received for handlers still running) at
 * which it stops reading new requests. It reads a payload whose header it took to the end, so it
 * may hold one payload more.
 */
export const SERVER_PAYLOAD_BYTES_PER_CONNECTION_HIGH = 256 * 1024 * 1024;
/** Request payload bytes all connections of a listener hold at which they all stop reading new requests. */
export const SERVER_PAYLOAD_BYTES_PER_LISTENER_HIGH = 1024 * 1024 * 1024;
/**
 * Request payload bytes of a listener past which a new request is refused at its header
 * (TW_TRANSPORT_SERVER_BUSY, its payload discarded as it streams by): connections already
 * mid-payload when the total crossed the high mark can take it this far, and no further.
 */
export const SERVER_PAYLOAD_BYTES_PER_LISTENER_HARD = 2 * 1024 * 1024 * 1024;

/** Time a connection that sent garbage gets to read our error frame before it is destroyed. */
export const PROTOCOL_ERROR_LINGER_MS = 1000;
