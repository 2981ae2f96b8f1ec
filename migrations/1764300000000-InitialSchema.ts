import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The whole first schema. Integrity lives in the database, not only in code:
 * unique names, addresses, MACs, VLAN ids and VNIs; per-model column rules as CHECKs;
 * GiST exclusion constraints so that host blocks never overlap and routable networks
 * (block-based, or attached to a router) never overlap each other.
 */
export class InitialSchema1764300000000 implements MigrationInterface {
  name = 'InitialSchema1764300000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE SEQUENCE revision_seq AS bigint START 1`);

    await q.query(`
      CREATE TABLE pools (
        name        text PRIMARY KEY CHECK (name IN ('vlan', 'vni')),
        range_start integer NOT NULL,
        range_end   integer NOT NULL,
        CHECK (range_start <= range_end)
      )`);
    await q.query(`INSERT INTO pools VALUES ('vlan', 100, 4094), ('vni', 10000, 16777215)`);

    await q.query(`
      CREATE TABLE hosts (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name             text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        underlay_ip      inet NOT NULL UNIQUE CHECK (family(underlay_ip) = 4 AND masklen(underlay_ip) = 32),
        uplink           text NOT NULL DEFAULT 'eth0',
        asn              bigint CHECK (asn BETWEEN 1 AND 4294967295),
        labels           jsonb NOT NULL DEFAULT '{}',
        agent_token_hash text NOT NULL,
        agent_connected  boolean NOT NULL DEFAULT false,
        agent_last_seen  timestamptz,
        agent_version    text,
        agent_errors     jsonb NOT NULL DEFAULT '[]',
        agent_drift      jsonb NOT NULL DEFAULT '[]',
        applied_revision bigint NOT NULL DEFAULT 0,
        desired_revision bigint NOT NULL DEFAULT 0,
        revision         bigint NOT NULL,
        created_at       timestamptz NOT NULL DEFAULT now()
      )`);

    await q.query(`
      CREATE TABLE networks (
        id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name             text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        model            text NOT NULL CHECK (model IN ('bridge', 'vlan', 'routed', 'overlay', 'fabric')),
        cidr             cidr NOT NULL CHECK (family(cidr) = 4),
        gateway          inet NOT NULL,
        mtu              integer NOT NULL CHECK (mtu BETWEEN 576 AND 9000),
        vlan_id          integer UNIQUE CHECK (vlan_id BETWEEN 1 AND 4094),
        vni              integer UNIQUE CHECK (vni BETWEEN 1 AND 16777215),
        encapsulation    text CHECK (encapsulation IN ('vxlan', 'ipip', 'gre')),
        routing          text CHECK (routing IN ('static', 'bgp')),
        block_prefix_len integer,
        transport        text CHECK (transport IN ('vxlan', 'vlan')),
        routable         boolean NOT NULL DEFAULT false,
        revision         bigint NOT NULL,
        created_at       timestamptz NOT NULL DEFAULT now(),
        CHECK (gateway << cidr AND masklen(gateway) = 32),
        CHECK (block_prefix_len BETWEEN masklen(cidr) AND 30),
        -- which parameters each model carries
        CHECK ((vlan_id IS NOT NULL) = (model = 'vlan' OR (model = 'fabric' AND transport = 'vlan'))),
        CHECK ((vni IS NOT NULL) = ((model = 'overlay' AND encapsulation = 'vxlan') OR (model = 'fabric' AND transport = 'vxlan'))),
        CHECK ((encapsulation IS NOT NULL) = (model = 'overlay')),
        CHECK ((routing IS NOT NULL) = (model = 'routed')),
        CHECK ((transport IS NOT NULL) = (model = 'fabric')),
        CHECK ((block_prefix_len IS NOT NULL) = (model = 'routed' OR (model = 'overlay' AND encapsulation <> 'vxlan'))),
        CHECK (block_prefix_len IS NULL OR routable),
        CONSTRAINT networks_routable_no_overlap EXCLUDE USING gist (cidr inet_ops WITH &&) WHERE (routable)
      )`);

    await q.query(`
      CREATE TABLE host_blocks (
        cidr       cidr PRIMARY KEY,
        network_id uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
        host_id    uuid NOT NULL REFERENCES hosts (id) ON DELETE RESTRICT,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT host_blocks_no_overlap EXCLUDE USING gist (cidr inet_ops WITH &&)
      )`);
    await q.query(`CREATE INDEX host_blocks_network_host ON host_blocks (network_id, host_id)`);

    await q.query(`
      CREATE TABLE instances (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name       text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        network_id uuid NOT NULL REFERENCES networks (id) ON DELETE RESTRICT,
        host_id    uuid NOT NULL REFERENCES hosts (id) ON DELETE RESTRICT,
        ip         inet NOT NULL CHECK (family(ip) = 4 AND masklen(ip) = 32),
        mac        macaddr NOT NULL UNIQUE,
        revision   bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT instances_network_ip UNIQUE (network_id, ip)
      )`);
    await q.query(`CREATE INDEX instances_host ON instances (host_id)`);

    await q.query(`
      CREATE TABLE routers (
        id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name       text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
        revision   bigint NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE router_networks (
        router_id  uuid NOT NULL REFERENCES routers (id) ON DELETE CASCADE,
        network_id uuid NOT NULL REFERENCES networks (id) ON DELETE RESTRICT,
        PRIMARY KEY (router_id, network_id)
      )`);
    await q.query(`CREATE INDEX router_networks_network ON router_networks (network_id)`);

    await q.query(`
      CREATE TABLE revisions (
        revision     bigint PRIMARY KEY,
        committed_at timestamptz NOT NULL DEFAULT now(),
        hosts        uuid[] NOT NULL,
        changes      jsonb NOT NULL
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    for (const t of [
      'revisions',
      'router_networks',
      'routers',
      'instances',
      'host_blocks',
      'networks',
      'hosts',
      'pools',
    ]) {
      await q.query(`DROP TABLE ${t}`);
    }
    await q.query(`DROP SEQUENCE revision_seq`);
  }
}
