export { isalErrors, type IsalErrorCode } from './errors.js';
export { isalAvailable, isalPoolStats, type IsalPoolStats } from './binding.js';
export { createIsalCodec, type IsalErasureCodec } from './isal-codec.js';
