import { defineErrors } from '@tw/errors';

/** Every operating error of @tw/extent-store. Callers branch on `code`. */
export const extentErrors = defineErrors('@tw/extent-store', {
  TW_EXTENT_LOCKED: {
    description: 'Another process (or another store in this process) holds the data folder; stop it or pick another folder.',
  },
  TW_EXTENT_FULL: {
    description: 'Refused a write: it would pass the configured capacity or eat into the free-space reserve of the file system. Delete or compact, then retry.',
  },
  TW_EXTENT_CORRUPT: {
    description: 'A record failed its checksum (or does not describe the fragment the index says it holds); the bytes are never served. Details name the extent and offset; repair the fragment from its peers.',
  },
  TW_EXTENT_ID_INVALID: {
    description: 'A fragment id is empty or longer than the limit (limits.ts ID_BYTES_MAX).',
  },
  TW_EXTENT_PAYLOAD_TOO_LARGE: {
    description: 'A fragment is larger than the store accepts (payloadBytesMax, bounded by the extent size).',
  },
  TW_EXTENT_BUFFER_TOO_SMALL: {
    description: 'The caller-supplied destination buffer is smaller than the fragment.',
  },
  TW_EXTENT_ARGUMENT_INVALID: {
    description: 'An argument or option is out of range (list limit, extent size, fsync policy); details name the field.',
  },
  TW_EXTENT_IO: {
    description: 'The file system failed a read, write or sync (EIO and friends); the operation was not acknowledged. `cause` holds the system error.',
  },
  TW_EXTENT_CLOSED: {
    description: 'The store is closed (or closing); open it again.',
  },
  TW_EXTENT_ABORTED: {
    description: 'The caller aborted the operation through its AbortSignal before it took effect.',
  },
  TW_EXTENT_BUSY: {
    description: 'A read kept racing extent compaction past the retry bound; retry later.',
    retryable: true,
  },
});

export type ExtentErrorCode = keyof typeof extentErrors.specs;
