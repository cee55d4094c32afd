import { isTwError } from '@tw/errors';

const BAD_INPUT = new Set(['TW_GATEWAY_BAD_INPUT', 'TW_GATEWAY_APP_BAD_REQUEST', 'TW_KEY_EMPTY', 'TW_KEY_TOO_LONG', 'TW_NAMESPACE_INVALID', 'TW_KV_LAYOUT_INVALID']);
const UNAVAILABLE = new Set(['TW_GATEWAY_NO_PLACEMENT', 'TW_GATEWAY_WRITE_FAILED', 'TW_GATEWAY_BLOCK_UNAVAILABLE', 'TW_GATEWAY_LOOKUP_FAILED', 'TW_GATEWAY_CLOSED', 'TW_GATEWAY_APP_BUSY']);

/** The HTTP status of a front-end or data-path error. */
export function httpStatusOf(err: unknown): number {
  if (!isTwError(err)) return 500;
  if (BAD_INPUT.has(err.code)) return 400;
  if (err.code === 'TW_GATEWAY_APP_UNAUTHORIZED') return 401;
  if (err.code === 'TW_GATEWAY_APP_NOT_FOUND') return 404;
  if (err.code === 'TW_GATEWAY_VALUE_TOO_LARGE' || err.code === 'TW_GATEWAY_APP_BODY_TOO_LARGE') return 413;
  if (UNAVAILABLE.has(err.code)) return 503;
  if (err.code === 'TW_GATEWAY_ABORTED') return 499;
  return 500;
}
