import { defineErrors } from '@tw/errors';

export const observabilityErrors = defineErrors('@tw/observability', {
  TW_ADMIN_HTTP_LISTEN: { description: 'The health/metrics HTTP endpoint could not bind its address (port in use, permission); the details name the address.' },
});
