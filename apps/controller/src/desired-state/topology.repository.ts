import type { EntityManager } from 'typeorm';
import type {
  FloatingIp,
  Host,
  HostBlock,
  Instance,
  Network,
  Policy,
  Router,
  Topology,
} from '../../../../libs/model/src/index.js';
import type { Change } from '../revisions/changes.js';

/**
 * Reads the whole topology in one consistent snapshot (REPEATABLE READ), with the revision
 * it reflects. Column lists are explicit so the domain objects carry exactly their fields.
 */
export async function loadTopology(
  m: EntityManager,
): Promise<{ topology: Topology; revision: number }> {
  return m.transaction('REPEATABLE READ', async (tx) => {
    const [{ r }] = await tx.query<{ r: string | null }[]>(
      'SELECT max(revision) AS r FROM revisions',
    );
    const hosts = await tx.query<Host[]>(
      `SELECT id, name, host(underlay_ip) AS "underlayIp", uplink, asn::float8 AS asn, labels FROM hosts`,
    );
    const networks = await tx.query<Network[]>(
      `SELECT id, name, model, cidr::text AS cidr, host(gateway) AS gateway, mtu, vlan_id AS "vlanId", vni,
              encapsulation, routing, block_prefix_len AS "blockPrefixLen", transport,
              nat_outgoing AS "natOutgoing" FROM networks`,
    );
    const instances = await tx.query<Instance[]>(
      `SELECT id, name, network_id AS "networkId", host_id AS "hostId", host(ip) AS ip, mac::text AS mac, labels FROM instances`,
    );
    const blocks = await tx.query<HostBlock[]>(
      `SELECT network_id AS "networkId", host_id AS "hostId", cidr::text AS cidr FROM host_blocks`,
    );
    const routers = await tx.query<Router[]>(
      `SELECT r.id, r.name, coalesce(array_agg(rn.network_id ORDER BY rn.network_id) FILTER (WHERE rn.network_id IS NOT NULL), '{}') AS "networkIds"
         FROM routers r LEFT JOIN router_networks rn ON rn.router_id = r.id GROUP BY r.id`,
    );
    const policies = await tx.query<
      { id: string; name: string; spec: Omit<Policy, 'id' | 'name'> }[]
    >('SELECT id, name, spec FROM policies');
    const floatingIps = await tx.query<FloatingIp[]>(
      `SELECT id, host(address) AS address, pool_id AS "poolId", instance_id AS "instanceId" FROM floating_ips`,
    );
    const byId = <T extends { id: string }>(xs: T[]) => new Map(xs.map((x) => [x.id, x]));
    return {
      topology: {
        hosts: byId(hosts),
        networks: byId(networks),
        instances: byId(instances),
        blocks,
        routers: byId(routers),
        policies: byId(policies.map((p) => ({ id: p.id, name: p.name, ...p.spec }))),
        floatingIps: byId(floatingIps),
      },
      revision: Number(r ?? 0),
    };
  });
}

/** Committed revisions after `revision`, oldest first: what another replica committed. */
export async function loadChangesSince(
  m: EntityManager,
  revision: number,
): Promise<{ revision: number; changes: Change[] }[]> {
  const rows = await m.query<{ revision: string; changes: Change[] }[]>(
    'SELECT revision, changes FROM revisions WHERE revision > $1 ORDER BY revision',
    [revision],
  );
  return rows.map((r) => ({ revision: Number(r.revision), changes: r.changes }));
}
