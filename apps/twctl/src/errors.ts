import { defineErrors } from '@tw/errors';

export const twctlErrors = defineErrors('@tw/twctl', {
  TW_LOCAL_PORT_IN_USE: { description: 'A port the local cluster needs is taken (another local cluster, or another program); stop it or pick other ports with --base-port.' },
  TW_LOCAL_START_FAILED: { description: 'A process of the local cluster exited or did not become ready in time; its last log lines are printed.' },
  TW_DEMO_FAILED: { description: 'The demo workload saw a wrong answer (a miss where a hit was expected, or bytes that do not match); the message says which.' },
});
