import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Network policies (issue 12). `spec` holds the normalised policy (selector, networkIds,
 * ingress, egress: libs/model/src/policy.ts) as the API validated it; network ids inside it
 * are references that may outlive their network (a missing network matches nothing).
 */
export class Policies1764700000000 implements MigrationInterface {
  name = 'Policies1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE policies (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name       text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        spec       jsonb NOT NULL,
        revision   bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE policies`);
  }
}
