import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Egress and floating IPs (issue 13). `networks.nat_outgoing` lets a network's instances
 * reach destinations outside every Lattice network through their host, source-translated
 * to its underlay address. A floating IP pool is a CIDR of external addresses (pools never
 * overlap each other; the service refuses one overlapping a network, and a network
 * overlapping a pool). A floating IP is one address of a pool, bound to at most one
 * instance (and an instance to at most one floating IP); deleting the instance unbinds it.
 */
export class EgressFloatingIps1764900000000 implements MigrationInterface {
  name = 'EgressFloatingIps1764900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE networks ADD COLUMN nat_outgoing boolean NOT NULL DEFAULT false`);
    await q.query(`
      CREATE TABLE floating_ip_pools (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name       text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        cidr       cidr NOT NULL CHECK (family(cidr) = 4 AND masklen(cidr) BETWEEN 16 AND 32),
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT floating_ip_pools_no_overlap EXCLUDE USING gist (cidr inet_ops WITH &&)
      )`);
    await q.query(`
      CREATE TABLE floating_ips (
        id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        address     inet NOT NULL UNIQUE CHECK (family(address) = 4 AND masklen(address) = 32),
        pool_id     uuid NOT NULL REFERENCES floating_ip_pools (id) ON DELETE RESTRICT,
        instance_id uuid UNIQUE REFERENCES instances (id) ON DELETE SET NULL,
        revision    bigint NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX floating_ips_pool_address ON floating_ips (pool_id, address)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE floating_ips`);
    await q.query(`DROP TABLE floating_ip_pools`);
    await q.query(`ALTER TABLE networks DROP COLUMN nat_outgoing`);
  }
}
