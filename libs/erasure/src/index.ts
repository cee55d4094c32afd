export { erasureErrors } from './errors.js';
export { type ErasureCodec, describeCodec } from './codec.js';
export { createCodec } from './create-codec.js';
