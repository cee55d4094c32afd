import { type Static, type TObject, Type } from '@sinclair/typebox';
import { BLOCK_BYTES_MAX, DRAM_TIER_BYTES_CAP, DRAM_TIER_BYTES_DEFAULT } from '@tw/gateway-core';
import {
  CONNECTIONS_MAX_DEFAULT,
  COORDINATOR_TOKEN_CACHE_ENTRIES_DEFAULT,
  COORDINATOR_TOKEN_CACHE_MS_DEFAULT,
  HTTP_BODY_BYTES_MAX_DEFAULT,
  HTTP_BODY_INFLIGHT_BYTES_MAX_DEFAULT,
  NATIVE_INFLIGHT_BYTES_MAX_DEFAULT,
  SHUTDOWN_TIMEOUT_MS_DEFAULT,
} from './limits.js';

const host = () => Type.String({ minLength: 1, default: '127.0.0.1' });
const port = (p: number) => Type.Integer({ minimum: 0, maximum: 65535, default: p, description: '0 picks a free port (printed at start-up)' });

/** The gateway's config file (JSON). Only `coordinators` is required; a front-end listens only when its section is present. */
const schema = Type.Object(
  {
    gatewayId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9._-]+$', default: 'gateway', description: 'Names this gateway in logs and commit request ids' }),
    coordinators: Type.Array(Type.String({ minLength: 3 }), { minItems: 1, maxItems: 7, description: 'gRPC host:port of every coordinator' }),
    dramTierBytes: Type.Integer({ minimum: 1024 * 1024, maximum: DRAM_TIER_BYTES_CAP, default: DRAM_TIER_BYTES_DEFAULT, description: 'Bytes of accepted and cached blocks held in memory' }),
    inflightBytesMax: Type.Optional(Type.Integer({ minimum: 1024 * 1024, description: 'Fragment bytes in flight to storage nodes (default: the data path default, 512 MiB)' })),
    putMode: Type.Union([Type.Literal('async'), Type.Literal('sync')], { default: 'async', description: 'async: a put is acknowledged once in the DRAM tier; sync: once committed' }),
    defaultNamespace: Type.String({ minLength: 1, default: 'default', description: 'Namespace of clients that name none (RESP before AUTH, lm://)' }),
    openDefaultNamespace: Type.Union([Type.Literal('loopback'), Type.Literal('all'), Type.Literal('none')], {
      default: 'loopback',
      description: 'Who may use the default namespace without a token (when it has none configured): loopback clients, everyone, or nobody',
    }),
    namespaces: Type.Record(Type.String(), Type.Object({ token: Type.Optional(Type.String({ minLength: 8 })) }, { additionalProperties: false }), {
      default: {},
      description: 'Access tokens per namespace: {"team-a": {"token": "..."}}; a namespace not listed (other than the default) is refused',
    }),
    http: Type.Optional(
      Type.Object(
        {
          host: host(),
          port: port(8080),
          bodyBytesMax: Type.Integer({ minimum: 1024, maximum: BLOCK_BYTES_MAX, default: HTTP_BODY_BYTES_MAX_DEFAULT }),
          bodyInflightBytesMax: Type.Integer({ minimum: 1024, default: HTTP_BODY_INFLIGHT_BYTES_MAX_DEFAULT, description: 'Body bytes of all HTTP requests in flight; beyond it 503 TW_GATEWAY_APP_BUSY' }),
        },
        { additionalProperties: false, description: 'HTTP API, /healthz, /readyz, /metrics' },
      ),
    ),
    resp: Type.Optional(
      Type.Object(
        { host: host(), port: port(6379), connectionsMax: Type.Integer({ minimum: 1, maximum: 65_536, default: CONNECTIONS_MAX_DEFAULT }) },
        { additionalProperties: false, description: 'RESP2 (redis://) front-end' },
      ),
    ),
    lmcache: Type.Optional(
      Type.Object(
        {
          host: host(),
          port: port(65432),
          namespace: Type.Optional(Type.String({ minLength: 1, description: 'Namespace lm:// keys go to (the protocol has no auth); default: defaultNamespace' })),
          connectionsMax: Type.Integer({ minimum: 1, maximum: 65_536, default: CONNECTIONS_MAX_DEFAULT }),
        },
        { additionalProperties: false, description: "LMCache's lm:// server protocol" },
      ),
    ),
    native: Type.Optional(
      Type.Object(
        {
          host: host(),
          port: port(7703),
          inflightBytesMax: Type.Integer({
            minimum: 1024 * 1024,
            default: NATIVE_INFLIGHT_BYTES_MAX_DEFAULT,
            description: 'Request payload bytes (values, key lists) of all native requests being received or served; beyond it TW_GATEWAY_APP_BUSY',
          }),
          deliveryDir: Type.Optional(
            Type.String({
              minLength: 2,
              pattern: '^/',
              description:
                'Absolute folder (tmpfs, e.g. under /dev/shm) where DELIVER writes values into files that clients on this host created there (llama.cpp loads its KV from such a file); created at start with mode 0700, so clients run as the gateway user. Absent: DELIVER is off',
            }),
          ),
        },
        { additionalProperties: false, description: 'Native binary protocol on the data transport (@tw/client)' },
      ),
    ),
    coordinatorTokens: Type.Object(
      {
        enabled: Type.Boolean({ default: true, description: "Accept the tokens the coordinators hold for their namespaces (checked with them, cached)" }),
        cacheMs: Type.Integer({ minimum: 0, maximum: 600_000, default: COORDINATOR_TOKEN_CACHE_MS_DEFAULT, description: 'How long a token verdict is trusted before it is checked again' }),
        cacheEntries: Type.Integer({ minimum: 1, maximum: 1_000_000, default: COORDINATOR_TOKEN_CACHE_ENTRIES_DEFAULT, description: 'Token verdicts kept' }),
      },
      { additionalProperties: false, default: {}, description: 'Namespace tokens from the coordinators; a coordinator outage keeps tokens already verified working' },
    ),
    logLevel: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info' }),
    shutdownTimeoutMs: Type.Integer({ minimum: 0, maximum: 600_000, default: SHUTDOWN_TIMEOUT_MS_DEFAULT, description: 'SIGTERM: how long open requests may take' }),
  },
  { additionalProperties: false },
);

export type GatewayConfig = Static<typeof schema>;
export const GatewayConfigSchema: TObject = schema;
