import { KEY_MAX_BYTES } from '@tw/block-format';

/** Bounds of the native protocol. Changing one is a protocol change (both sides check them). */

const MiB = 1024 * 1024;

/** Longest key, in bytes (the block format's bound). */
export const NATIVE_KEY_BYTES_MAX = KEY_MAX_BYTES;
/** Largest value a PUT carries or a GET returns. */
export const NATIVE_VALUE_BYTES_MAX = 512 * MiB;
/** Most keys in one LOOKUP_PREFIX: the gateway's own limit (@tw/gateway-core LOOKUP_KEYS_MAX). */
export const NATIVE_LOOKUP_KEYS_MAX = 65_536;
/** Largest LOOKUP_PREFIX payload: every key at its longest with its u16 length. */
export const NATIVE_LOOKUP_PAYLOAD_BYTES_MAX = NATIVE_LOOKUP_KEYS_MAX * (2 + NATIVE_KEY_BYTES_MAX);
/** Longest access token, in UTF-8 bytes. */
export const NATIVE_TOKEN_BYTES_MAX = 1024;
/** Longest error code and message carried in an error reply. */
export const NATIVE_ERROR_CODE_BYTES_MAX = 64;
export const NATIVE_ERROR_MESSAGE_BYTES_MAX = 1024;
/** Largest TTL a PUT may ask for, in ms (exact in a JS number). */
export const NATIVE_TTL_MS_MAX = Number.MAX_SAFE_INTEGER;
/** Largest transport payload either side accepts: a value at its largest. */
export const NATIVE_PAYLOAD_BYTES_MAX = NATIVE_VALUE_BYTES_MAX;

/** DELIVER: most scatter entries in one request (one per section a value's tail is cut into). */
export const NATIVE_DELIVER_SCATTER_MAX = 4096;
/** DELIVER: largest scatter list payload (24 bytes an entry). */
export const NATIVE_DELIVER_SCATTER_BYTES_MAX = NATIVE_DELIVER_SCATTER_MAX * 24;
/** DELIVER: largest head (the value's bytes before the delivered tail) returned in the reply. */
export const NATIVE_DELIVER_HEAD_BYTES_MAX = 64 * 1024;
/** DELIVER: longest file name (a plain name inside the gateway's delivery folder). */
export const NATIVE_DELIVER_NAME_BYTES_MAX = 200;
/** HELLO: longest delivery folder path the gateway announces. */
export const NATIVE_DELIVERY_DIR_BYTES_MAX = 4096;

/** Client defaults: connections in the pool to the gateway, request bytes in flight on one of them. */
export const CLIENT_CONNECTIONS_DEFAULT = 4;
export const CLIENT_INFLIGHT_BYTES_PER_CONNECTION_DEFAULT = 256 * MiB;
