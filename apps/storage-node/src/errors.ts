import { defineErrors } from '@tw/errors';

export const storageNodeErrors = defineErrors('@tw/storage-node', {
  TW_STORAGE_NODE_START: { description: 'The storage node could not start (data folder, listen address); the message says which part failed and why.' },
});
