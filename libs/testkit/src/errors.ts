import { defineErrors } from '@tw/errors';

export const testkitErrors = defineErrors('@tw/testkit', {
  TW_TESTKIT_BAD_HISTORY: { description: 'A history given to the linearizability checker or recorder is malformed (an operation returns before its call, or completes twice).' },
  TW_TESTKIT_BAD_OPTION: { description: 'A simulator or checker option is out of range (see the message for the field).' },
});
