/** Bounds of the gateway front-ends. The data path's own bounds are @tw/gateway-core's limits. */

const MiB = 1024 * 1024;

/** Largest HTTP PUT body by default (config http.bodyBytesMax; at most the gateway's BLOCK_BYTES_MAX). */
export const HTTP_BODY_BYTES_MAX_DEFAULT = 512 * MiB;
/** Body bytes of all HTTP requests being received or answered at once, by default (config http.bodyInflightBytesMax). */
export const HTTP_BODY_INFLIGHT_BYTES_MAX_DEFAULT = 1024 * MiB;
/** Largest JSON body of a lookup-prefix request. */
export const HTTP_LOOKUP_BODY_BYTES_MAX = 64 * MiB;
/** Connections one front-end keeps open at once; beyond it new connections are closed at once. */
export const CONNECTIONS_MAX_DEFAULT = 1024;
/** RESP: commands of one connection being executed or waiting to send their reply. */
export const RESP_PENDING_COMMANDS_MAX = 64;
/** RESP: reading pauses while the socket holds more reply bytes than this not yet sent. */
export const RESP_WRITE_BUFFER_BYTES_MAX = 64 * MiB;
/** RESP: reading pauses while the parser holds more unparsed bytes than this. */
export const RESP_PARSER_BUFFERED_BYTES_MAX = 8 * MiB;
/** lm://: reading pauses while the parser holds more bytes than this (a request is parsed one at a time). */
export const LM_PARSER_BUFFERED_BYTES_MAX = 8 * MiB;
/** How long stop() lets connections finish before it destroys them, by default (config shutdownTimeoutMs). */
export const SHUTDOWN_TIMEOUT_MS_DEFAULT = 10_000;
/** Native protocol: request payload bytes of all requests being received or served at once, by default (config native.inflightBytesMax). */
export const NATIVE_INFLIGHT_BYTES_MAX_DEFAULT = 1024 * MiB;
/** Native protocol: requests of one connection running at once; beyond it the connection is not read. */
export const NATIVE_INFLIGHT_PER_CONNECTION_MAX = 64;
/** Coordinator tokens: how long a verdict is trusted (config coordinatorTokens.cacheMs) and how many are kept. */
export const COORDINATOR_TOKEN_CACHE_MS_DEFAULT = 5_000;
export const COORDINATOR_TOKEN_CACHE_ENTRIES_DEFAULT = 4_096;
/** Coordinator tokens: deadline and attempts of one check (an outage must not stall requests long). */
export const COORDINATOR_TOKEN_CHECK_DEADLINE_MS = 2_000;
export const COORDINATOR_TOKEN_CHECK_ATTEMPTS = 3;
