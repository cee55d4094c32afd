/** The project's checksum (xxh64, seed 0), from @tw/block-format: records use the same one. */
export { checksum64, Checksum64Stream } from '@tw/block-format';
