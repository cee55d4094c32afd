/** Largest fragment id: u8 + 63 (namespace) + u16 + 512 (key) + u64 + u8 = 588; room to spare. */
export const FRAGMENT_ID_BYTES_MAX = 1024;
/** Most entries in one LIST reply. */
export const LIST_LIMIT_MAX = 1000;
