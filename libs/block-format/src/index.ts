export { blockFormatErrors, type BlockFormatErrorCode } from './errors.js';
export * from './limits.js';
export { checksum64, checksum64Parts, Checksum64Stream } from './checksum.js';
export { validateKey, validateNamespace, keyFromString, keyHash64 } from './key.js';
export {
  DTYPE_CODES,
  DTYPE_BYTES,
  MEMORY_FORMAT_CODES,
  type DtypeName,
  type MemoryFormatName,
  type KvLayout,
  validateKvLayout,
  kvLayoutBytes,
} from './kv-layout.js';
export {
  type Redundancy,
  fragmentCount,
  fragmentsNeeded,
  lossesTolerated,
  validateRedundancy,
  formatRedundancy,
  parseRedundancy,
  fragmentBytes,
} from './fragment-size.js';
export {
  type BlockHeader,
  BLOCK_MAGIC,
  BLOCK_FORMAT_VERSION,
  BLOCK_HEADER_MAX_BYTES,
  blockHeaderBytes,
  encodeBlockHeader,
  decodeBlockHeader,
} from './block-header.js';
export {
  type FragmentHeader,
  FRAGMENT_MAGIC,
  FRAGMENT_FORMAT_VERSION,
  FRAGMENT_HEADER_BYTES,
  encodeFragmentHeader,
  decodeFragmentHeader,
  validateFragmentHeader,
  verifyFragment,
} from './fragment-header.js';
export { type LmcacheKey, type LmcacheKeyRole, parseLmcacheKey } from './lmcache-key.js';
export { ByteReader, ByteWriter } from './byte-reader.js';
