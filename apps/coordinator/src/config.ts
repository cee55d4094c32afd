import { type Static, type TObject, Type } from '@sinclair/typebox';

const hostPort = (port: number) =>
  Type.Object({ host: Type.String({ minLength: 1, default: '127.0.0.1' }), port: Type.Integer({ minimum: 0, maximum: 65535, default: port }) }, { additionalProperties: false, default: {} });

const schema = Type.Object(
  {
    id: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'This coordinator\'s Raft id (1, 2, 3...), never reused' }),
    dataDir: Type.String({ minLength: 1 }),
    listen: hostPort(7400),
    admin: hostPort(9400),
    peers: Type.Array(
      Type.Object({ id: Type.Integer({ minimum: 1 }), address: Type.String({ minLength: 3, description: 'gRPC host:port' }) }, { additionalProperties: false }),
      { minItems: 1, maxItems: 7, description: 'Every coordinator of the group, this one included' },
    ),
    tickMs: Type.Integer({ minimum: 5, maximum: 1000, default: 100 }),
    electionTicks: Type.Integer({ minimum: 3, maximum: 100, default: 10 }),
    heartbeatTicks: Type.Integer({ minimum: 1, maximum: 50, default: 1 }),
    leaseReads: Type.Boolean({ default: false, description: 'Serve linearizable reads on the leader\'s lease (no ReadIndex heartbeat round); needs check-quorum (on) and clocks whose drift stays well below the election timeout' }),
    snapshotEveryEntries: Type.Integer({ minimum: 10, default: 10_000 }),
    blockCacheEntries: Type.Integer({ minimum: 0, maximum: 64 * 1024 * 1024, default: 262_144, description: 'Block records kept in memory for lookups (~300 bytes each)' }),
    keepEntriesAfterSnapshot: Type.Integer({ minimum: 0, default: 5_000 }),
    levelDbWriteBufferBytes: Type.Integer({
      minimum: 1024 * 1024,
      maximum: 1024 * 1024 * 1024,
      default: 16 * 1024 * 1024,
      description: 'LevelDB memtable size of the raft log and of the block map (two each at most in memory); LevelDB\'s own default is 4 MiB',
    }),
    pgCount: Type.Integer({ minimum: 1, maximum: 1 << 20, default: 4096, description: 'Fixed at cluster creation' }),
    redundancy: Type.String({ default: 'ec:4+2', description: 'Default policy and PG stripe width: ec:K+M, replicate:N or none' }),
    domainLevels: Type.Array(Type.String({ minLength: 1 }), { default: ['host'], minItems: 1, maxItems: 8 }),
    failureDomain: Type.String({ default: 'host', description: 'The domain level fragment caps apply at' }),
    nodeTimeoutMs: Type.Integer({ minimum: 100, default: 10_000, description: 'A storage node silent this long is marked down' }),
    purgeGraceMs: Type.Integer({ minimum: 0, default: 60_000 }),
    openDefaultNamespace: Type.Boolean({ default: true, description: 'Create the open "default" namespace in a new cluster' }),
    adminToken: Type.Optional(Type.String({ minLength: 8 })),
    logLevel: Type.Union([Type.Literal('fatal'), Type.Literal('error'), Type.Literal('warn'), Type.Literal('info'), Type.Literal('debug'), Type.Literal('trace'), Type.Literal('silent')], { default: 'info' }),
  },
  { additionalProperties: false },
);

export type CoordinatorConfig = Static<typeof schema>;
export const CoordinatorConfigSchema: TObject = schema;
