import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Free-range tables, so that allocation never scans what is in use (see
 * `apps/controller/src/pools/free-ranges.ts`): each row is an inclusive range `[lo, hi]` of
 * free values, the primary key ends with `hi`.
 *
 * - `free_addresses`: allocatable addresses (as integers) of a network. `owner` is the
 *   host owning the block for block-based models, the zero uuid for shared-subnet ones.
 * - `free_blocks`: unclaimed blocks of a block-based network, as block numbers
 *   (`address >> (32 - block_prefix_len)`).
 * - `free_ids`: free VLAN ids and VNIs inside each pool's range.
 *
 * `up` fills them from the rows in use: the gaps between consecutive "taken" points.
 */
export class AllocationRanges1764500000000 implements MigrationInterface {
  name = 'AllocationRanges1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE free_addresses (
        network_id uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
        owner      uuid NOT NULL,
        lo         bigint NOT NULL,
        hi         bigint NOT NULL,
        CHECK (lo <= hi),
        PRIMARY KEY (network_id, owner, hi)
      )`);
    await q.query(`
      CREATE TABLE free_blocks (
        network_id uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
        lo         bigint NOT NULL,
        hi         bigint NOT NULL,
        CHECK (lo <= hi),
        PRIMARY KEY (network_id, hi)
      )`);
    await q.query(`
      CREATE TABLE free_ids (
        pool text   NOT NULL CHECK (pool IN ('vlan', 'vni')),
        lo   bigint NOT NULL,
        hi   bigint NOT NULL,
        CHECK (lo <= hi),
        PRIMARY KEY (pool, hi)
      )`);

    // Shared-subnet networks: taken are the network address, the gateway, the broadcast
    // and every instance address.
    await q.query(`
      INSERT INTO free_addresses (network_id, owner, lo, hi)
      SELECT network_id, '00000000-0000-0000-0000-000000000000', p + 1, nxt - 1 FROM (
        SELECT network_id, p, lead(p) OVER (PARTITION BY network_id ORDER BY p) AS nxt FROM (
          SELECT id AS network_id, cidr - '0.0.0.0'::inet AS p FROM networks WHERE block_prefix_len IS NULL
          UNION SELECT id, broadcast(cidr) - '0.0.0.0'::inet FROM networks WHERE block_prefix_len IS NULL
          UNION SELECT id, gateway - '0.0.0.0'::inet FROM networks WHERE block_prefix_len IS NULL
          UNION SELECT i.network_id, i.ip - '0.0.0.0'::inet
                  FROM instances i JOIN networks n ON n.id = i.network_id WHERE n.block_prefix_len IS NULL
        ) taken
      ) g WHERE nxt - p > 1`);
    // Block-based networks: the blocks claimed, between the block numbers just outside the CIDR.
    await q.query(`
      INSERT INTO free_blocks (network_id, lo, hi)
      SELECT network_id, p + 1, nxt - 1 FROM (
        SELECT network_id, p, lead(p) OVER (PARTITION BY network_id ORDER BY p) AS nxt FROM (
          SELECT id AS network_id, ((cidr - '0.0.0.0'::inet) >> (32 - block_prefix_len)) - 1 AS p
            FROM networks WHERE block_prefix_len IS NOT NULL
          UNION SELECT id, ((broadcast(cidr) - '0.0.0.0'::inet) >> (32 - block_prefix_len)) + 1
            FROM networks WHERE block_prefix_len IS NOT NULL
          UNION SELECT b.network_id, (b.cidr - '0.0.0.0'::inet) >> (32 - n.block_prefix_len)
            FROM host_blocks b JOIN networks n ON n.id = b.network_id
        ) taken
      ) g WHERE nxt - p > 1`);
    // ... and in each claimed block: its first address (the gateway), its broadcast and the
    // instances in it; the network address lies below the first.
    await q.query(`
      INSERT INTO free_addresses (network_id, owner, lo, hi)
      SELECT network_id, host_id, p + 1, nxt - 1 FROM (
        SELECT network_id, host_id, p, lead(p) OVER (PARTITION BY cidr ORDER BY p) AS nxt FROM (
          SELECT cidr, network_id, host_id, (cidr - '0.0.0.0'::inet) + 1 AS p FROM host_blocks
          UNION SELECT cidr, network_id, host_id, broadcast(cidr) - '0.0.0.0'::inet FROM host_blocks
          UNION SELECT b.cidr, b.network_id, b.host_id, i.ip - '0.0.0.0'::inet
                  FROM host_blocks b JOIN instances i ON i.network_id = b.network_id AND i.ip << b.cidr
        ) taken
      ) g WHERE nxt - p > 1`);
    // Pools: the ids in use inside each range.
    await q.query(`
      INSERT INTO free_ids (pool, lo, hi)
      SELECT pool, p + 1, nxt - 1 FROM (
        SELECT pool, p, lead(p) OVER (PARTITION BY pool ORDER BY p) AS nxt FROM (
          SELECT name AS pool, range_start::bigint - 1 AS p FROM pools
          UNION SELECT name, range_end::bigint + 1 FROM pools
          UNION SELECT p.name, n.vlan_id FROM pools p JOIN networks n
                  ON p.name = 'vlan' AND n.vlan_id BETWEEN p.range_start AND p.range_end
          UNION SELECT p.name, n.vni FROM pools p JOIN networks n
                  ON p.name = 'vni' AND n.vni BETWEEN p.range_start AND p.range_end
        ) taken
      ) g WHERE nxt - p > 1`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE free_ids`);
    await q.query(`DROP TABLE free_blocks`);
    await q.query(`DROP TABLE free_addresses`);
  }
}
