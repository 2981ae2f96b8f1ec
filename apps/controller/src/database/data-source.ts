import { DataSource } from 'typeorm';
import { InitialSchema1764300000000 } from '../../../../migrations/1764300000000-InitialSchema.js';
import { ClusterIdentity1764400000000 } from '../../../../migrations/1764400000000-ClusterIdentity.js';
import { AllocationRanges1764500000000 } from '../../../../migrations/1764500000000-AllocationRanges.js';
import { InstanceLabels1764600000000 } from '../../../../migrations/1764600000000-InstanceLabels.js';
import { Policies1764700000000 } from '../../../../migrations/1764700000000-Policies.js';
import { JoinTokens1764800000000 } from '../../../../migrations/1764800000000-JoinTokens.js';
import { EgressFloatingIps1764900000000 } from '../../../../migrations/1764900000000-EgressFloatingIps.js';
import { ENTITIES } from './entities.js';

/** Every migration, in order. Listed explicitly: ESM builds cannot glob-load classes. */
export const MIGRATIONS = [
  InitialSchema1764300000000,
  ClusterIdentity1764400000000,
  AllocationRanges1764500000000,
  InstanceLabels1764600000000,
  Policies1764700000000,
  JoinTokens1764800000000,
  EgressFloatingIps1764900000000,
];

/** Serialises migration runs of replicas that start together on one database. */
const MIGRATION_LOCK = 0x1a77_1ce0;

export function createDataSource(url: string, poolSize = 20): DataSource {
  return new DataSource({
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    // LATTICE_SQL_LOG=1 prints every statement (debugging only).
    logging: process.env.LATTICE_SQL_LOG === '1' ? ['query'] : false,
    uuidExtension: 'pgcrypto',
    // A request may hold a connection while it queues for a network's row lock: under a
    // burst, waiting for a free connection is normal, not a sign the database is down.
    // A database whose network dropped without a reset answers nothing: keepalives notice
    // a dead peer, and a statement unanswered for a minute fails (503) instead of hanging.
    extra: {
      max: poolSize,
      connectionTimeoutMillis: 60_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      query_timeout: 60_000,
    },
  });
}

/** Applies pending migrations, one replica at a time. */
export async function runMigrations(ds: DataSource): Promise<string[]> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    const done = await ds.runMigrations({ transaction: 'each' });
    return done.map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined);
    await runner.release();
  }
}
