import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Labels on instances (Kubernetes-style, validated by the API), for network policy to
 * select. The GIN index (jsonb_path_ops) serves the list filter `labels @> '{"k":"v"}'`.
 * Adding a column with a constant default rewrites no rows.
 */
export class InstanceLabels1764600000000 implements MigrationInterface {
  name = 'InstanceLabels1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE instances ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'`);
    await q.query(`CREATE INDEX instances_labels ON instances USING gin (labels jsonb_path_ops)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX instances_labels`);
    await q.query(`ALTER TABLE instances DROP COLUMN labels`);
  }
}
