import { defineErrors } from '@tw/errors';

export const coordinatorAppErrors = defineErrors('@tw/coordinator', {
  TW_COORDINATOR_CONFIG: { description: 'The coordinator config is inconsistent (its id is not among the peers, duplicate peer ids, unknown failure domain level, bad redundancy).' },
});
