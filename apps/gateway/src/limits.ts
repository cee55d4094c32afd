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
