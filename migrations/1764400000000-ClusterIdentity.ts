import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * One random id per database. Agents keep it with their applied state; an agent whose
 * state came from another database (whatever its revision says) is sent a snapshot.
 */
export class ClusterIdentity1764400000000 implements MigrationInterface {
  name = 'ClusterIdentity1764400000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE cluster (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        singleton  boolean NOT NULL DEFAULT true UNIQUE CHECK (singleton),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`INSERT INTO cluster DEFAULT VALUES`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE cluster`);
  }
}
