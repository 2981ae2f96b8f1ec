import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Join tokens (issue 14): a credential an agent trades, once per host, for a host of its own
 * and that host's agent token. Only the token's SHA-256 is stored. `uses` counts the joins
 * it allowed; `revoked_at` is set by DELETE (the row stays, so a revoked token says so).
 */
export class JoinTokens1764800000000 implements MigrationInterface {
  name = 'JoinTokens1764800000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE join_tokens (
        id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name         text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        token_hash   text NOT NULL UNIQUE,
        description  text NOT NULL DEFAULT '',
        labels       jsonb NOT NULL DEFAULT '{}',
        allow_rejoin boolean NOT NULL DEFAULT false,
        max_uses     integer NOT NULL CHECK (max_uses >= 1),
        uses         integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
        expires_at   timestamptz NOT NULL,
        revoked_at   timestamptz,
        last_used_at timestamptz,
        created_at   timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE join_tokens`);
  }
}
