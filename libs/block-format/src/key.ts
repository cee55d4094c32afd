import { xxh64 } from '@node-rs/xxhash';
import { blockFormatErrors } from './errors.js';
import { KEY_MAX_BYTES, NAMESPACE_MAX_CHARS } from './limits.js';

const NAMESPACE_RE = /^[a-z0-9][a-z0-9_-]*$/;

/** Throws TW_NAMESPACE_INVALID unless `name` is a valid namespace name. */
export function validateNamespace(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > NAMESPACE_MAX_CHARS || !NAMESPACE_RE.test(name)) {
    throw blockFormatErrors.create(
      'TW_NAMESPACE_INVALID',
      `namespace ${JSON.stringify(typeof name === 'string' ? name.slice(0, 80) : typeof name)} is invalid: use 1-${NAMESPACE_MAX_CHARS} characters of a-z, 0-9, "-", "_", starting with a letter or digit`,
      { details: { namespace: typeof name === 'string' ? name.slice(0, 80) : null } },
    );
  }
}

/** Throws TW_KEY_EMPTY / TW_KEY_TOO_LONG unless `key` is 1..512 bytes. Keys are opaque bytes. */
export function validateKey(key: Uint8Array): void {
  if (key.byteLength === 0) throw blockFormatErrors.create('TW_KEY_EMPTY', 'key is empty');
  if (key.byteLength > KEY_MAX_BYTES) {
    throw blockFormatErrors.create('TW_KEY_TOO_LONG', `key is ${key.byteLength} bytes; the limit is ${KEY_MAX_BYTES}`, {
      details: { lengthBytes: key.byteLength, maxBytes: KEY_MAX_BYTES },
    });
  }
}

/** Encodes a string key the way engines send it (UTF-8) and validates it. */
export function keyFromString(key: string): Buffer {
  const bytes = Buffer.from(key, 'utf8');
  validateKey(bytes);
  return bytes;
}

/**
 * The 64-bit identity hash of (namespace, key): xxh64 over `u8 len(ns) | ns | key`, seed 0.
 * The length prefix keeps ("ab", "c") and ("a", "bc") apart. Used for placement groups and in
 * fragment headers; never for equality (the full key is compared where identity matters).
 */
export function keyHash64(namespace: string, key: Uint8Array): bigint {
  validateNamespace(namespace);
  validateKey(key);
  const ns = Buffer.from(namespace, 'latin1');
  const buf = Buffer.allocUnsafe(1 + ns.length + key.byteLength);
  buf[0] = ns.length;
  ns.copy(buf, 1);
  buf.set(key, 1 + ns.length);
  return xxh64(buf, 0n);
}
