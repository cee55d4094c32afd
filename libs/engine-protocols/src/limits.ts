/**
 * Bounds of the engine-facing protocols. The RESP numbers are redis-server 7's own defaults, so
 * a client that works against Redis works here, and input Redis refuses is refused with Redis's
 * words.
 */

/** Largest RESP bulk string (a SET value): redis-server's `proto-max-bulk-len` default, 512 MiB. */
export const RESP_BULK_BYTES_MAX = 512 * 1024 * 1024;

/** Most arguments in one RESP command (MGET/EXISTS/DEL keys + 1). */
export const RESP_ARGS_MAX = 1024 * 1024;

/**
 * Longest RESP line without its terminator: an inline command, or a `*N` / `$N` header. This is
 * redis-server's PROTO_INLINE_MAX_SIZE (64 KiB).
 */
export const RESP_LINE_BYTES_MAX = 64 * 1024;

/**
 * Sum of the argument bytes of one command. Redis closes a client whose query buffer passes
 * `client-query-buffer-limit` (1 GiB) without a reply; so does this parser.
 */
export const RESP_COMMAND_BYTES_MAX = 1024 * 1024 * 1024;

/** Before AUTH (when the connection must authenticate), Redis refuses commands of more arguments. */
export const RESP_UNAUTHENTICATED_ARGS_MAX = 10;

/** Before AUTH (when the connection must authenticate), Redis refuses longer bulk strings. */
export const RESP_UNAUTHENTICATED_BULK_BYTES_MAX = 16 * 1024;

/** Bytes of an argument that Redis quotes back in an error message (`%.128s`). */
export const RESP_ERROR_ARG_BYTES_MAX = 128;

/** Size of the `lm://` request header: nine int32 and a 150-byte key. */
export const LM_REQUEST_HEADER_BYTES = 9 * 4 + 150;

/** Size of the `lm://` reply header: nine int32. */
export const LM_REPLY_HEADER_BYTES = 9 * 4;

/** Bytes of the key field of an `lm://` request (LMCache's MAX_KEY_LENGTH). */
export const LM_KEY_BYTES = 150;

/** Largest `lm://` PUT payload or GET reply payload accepted (same bound as a RESP value). */
export const LM_PAYLOAD_BYTES_MAX = 512 * 1024 * 1024;
