import { defineErrors } from '@tw/errors';

export const blockFormatErrors = defineErrors('@tw/block-format', {
  TW_KEY_EMPTY: { description: 'A key must hold at least one byte.' },
  TW_KEY_TOO_LONG: { description: 'A key is longer than 512 bytes; engines hash long prefixes into short keys.' },
  TW_NAMESPACE_INVALID: { description: 'A namespace name is not 1-63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit.' },
  TW_HEADER_TRUNCATED: { description: 'A block or fragment header ends before its declared length: the bytes are incomplete.' },
  TW_HEADER_BAD_MAGIC: { description: 'The bytes do not start with a block or fragment header (wrong magic number).' },
  TW_HEADER_BAD_VERSION: { description: 'The header has a format version this build cannot read; upgrade the reader.' },
  TW_HEADER_INVALID: { description: 'A header field is out of range (lengths, k/m, fragment index, layout); the details name the field.' },
  TW_HEADER_CHECKSUM: { description: 'A header failed its own checksum: the header bytes are corrupt.' },
  TW_CHECKSUM_MISMATCH: { description: 'Payload bytes do not match their recorded checksum: corrupt data, never served.' },
  TW_LMCACHE_KEY_INVALID: { description: 'A string does not have one of the LMCache key shapes the parser knows.' },
});

export type BlockFormatErrorCode = keyof typeof blockFormatErrors.specs;
