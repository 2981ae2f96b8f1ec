import {
  blockOf,
  broadcast,
  cidrSize,
  contains,
  formatCidr,
  intToIp,
  ipToInt,
  isBlockBased,
  parseCidr,
  type Cidr,
  type HostBlock,
} from '../../../../libs/model/src/index.js';
import { Conflict, InvalidInput } from '../common/errors.js';
import type { NetworkEntity } from '../database/entities.js';
import type { Tx } from '../revisions/revision-log.js';

/**
 * IP address management. Callers hold the network's row lock (FOR NO KEY UPDATE), so
 * allocations within one network are serialised; the (network, ip) unique constraint and
 * the blocks' exclusion constraint are the database's own guarantee.
 *
 * Shared-subnet models: any address of the CIDR but the network address, the broadcast
 * and the gateway. Block-based models: the host's blocks (allocated on first use, aligned
 * `blockPrefixLen` pieces of the CIDR); in each block the block's network address, its
 * first address (the host's gateway for that block) and its broadcast are reserved.
 */
export interface Allocation {
  ip: string;
  /** A block allocated to the host for this address. */
  newBlock?: HostBlock;
}

const NO_RESERVED = '0.0.0.0';

/**
 * Lowest free address in [lo, hi] of the network, skipping `reserved`. Within one
 * transaction (a bulk create) the search resumes after the previous hit: the network is
 * locked, so nothing below it can have been freed meanwhile.
 */
async function lowestFree(
  tx: Tx,
  networkId: string,
  lo: number,
  hi: number,
  reserved: string,
): Promise<string | null> {
  const hint = `ipam:${networkId}:${lo}:${hi}`;
  const from = (tx.memo.get(hint) as number | undefined) ?? lo;
  if (from > hi) return null;
  const [row] = await tx.query<{ ip: string }>(
    `WITH used AS (SELECT ip FROM instances WHERE network_id = $1 AND ip BETWEEN $2::inet AND $3::inet)
     SELECT host(c) AS ip FROM (
       SELECT $2::inet AS c UNION ALL SELECT ip + 1 FROM used UNION ALL SELECT $4::inet + 1
     ) cand
     WHERE c BETWEEN $2::inet AND $3::inet AND c <> $4::inet
       AND NOT EXISTS (SELECT 1 FROM used u WHERE u.ip = cand.c)
     ORDER BY c LIMIT 1`,
    [networkId, intToIp(from), intToIp(hi), reserved],
  );
  if (row) tx.memo.set(hint, ipToInt(row.ip) + 1);
  return row?.ip ?? null;
}

/**
 * Up to `count` lowest free addresses of a shared-subnet network in one query (for bulk
 * creates), skipping the gateway and the addresses in `exclude` (asked for explicitly by
 * the same bulk). Fewer than `count` means the subnet is exhausted.
 */
export async function freeAddresses(
  tx: Tx,
  net: NetworkEntity,
  count: number,
  exclude: readonly string[],
): Promise<string[]> {
  if (count === 0) return [];
  const c = parseCidr(net.cidr)!;
  const rows = await tx.query<{ ip: string }>(
    `SELECT host('0.0.0.0'::inet + n) AS ip
       FROM generate_series($2::bigint, $3::bigint) AS n
      WHERE n <> $4::bigint
        AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.network_id = $1 AND i.ip = '0.0.0.0'::inet + n)
        AND NOT (('0.0.0.0'::inet + n) = ANY($5::inet[]))
      ORDER BY n LIMIT $6`,
    [net.id, c.base + 1, broadcast(c) - 1, ipToInt(net.gateway), exclude, count],
  );
  return rows.map((r) => r.ip);
}

async function ipInUse(tx: Tx, networkId: string, ip: string): Promise<boolean> {
  const rows = await tx.query('SELECT 1 FROM instances WHERE network_id = $1 AND ip = $2::inet', [
    networkId,
    ip,
  ]);
  return rows.length > 0;
}

export async function allocateIp(
  tx: Tx,
  net: NetworkEntity,
  hostId: string,
  explicit: string | undefined,
  field = 'ip',
): Promise<Allocation> {
  return isBlockBased(net)
    ? allocateInBlocks(tx, net, hostId, explicit, field)
    : allocateInSubnet(tx, net, explicit, field);
}

async function allocateInSubnet(
  tx: Tx,
  net: NetworkEntity,
  explicit: string | undefined,
  field: string,
): Promise<Allocation> {
  const c = parseCidr(net.cidr)!;
  if (explicit !== undefined) {
    const ip = ipToInt(explicit);
    if (!contains(c, ip))
      throw InvalidInput.field(field, `${field} ${explicit} is outside the network ${net.cidr}`);
    if (ip === c.base || ip === broadcast(c))
      throw InvalidInput.field(field, `${field} ${explicit} is the network or broadcast address`);
    if (explicit === net.gateway)
      throw InvalidInput.field(field, `${field} ${explicit} is the network's gateway`);
    if (await ipInUse(tx, net.id, explicit))
      throw new Conflict(`IP address ${explicit} is already in use in network "${net.name}"`);
    return { ip: explicit };
  }
  const ip = await lowestFree(tx, net.id, c.base + 1, broadcast(c) - 1, net.gateway);
  if (!ip) throw new Conflict(`network "${net.name}" (${net.cidr}) is exhausted: no free address`);
  return { ip };
}

async function blocksOf(tx: Tx, networkId: string): Promise<{ cidr: Cidr; hostId: string }[]> {
  const rows = await tx.query<{ cidr: string; host_id: string }>(
    'SELECT cidr::text AS cidr, host_id FROM host_blocks WHERE network_id = $1 ORDER BY cidr',
    [networkId],
  );
  return rows.map((r) => ({ cidr: parseCidr(r.cidr)!, hostId: r.host_id }));
}

async function claimBlock(
  tx: Tx,
  net: NetworkEntity,
  hostId: string,
  block: Cidr,
): Promise<HostBlock> {
  const b: HostBlock = { networkId: net.id, hostId, cidr: formatCidr(block) };
  await tx.query('INSERT INTO host_blocks (cidr, network_id, host_id) VALUES ($1, $2, $3)', [
    b.cidr,
    b.networkId,
    b.hostId,
  ]);
  tx.record({ type: 'block.upsert', block: b });
  return b;
}

async function allocateInBlocks(
  tx: Tx,
  net: NetworkEntity,
  hostId: string,
  explicit: string | undefined,
  field: string,
): Promise<Allocation> {
  const c = parseCidr(net.cidr)!;
  const len = net.blockPrefixLen!;
  const blocks = await blocksOf(tx, net.id);
  if (explicit !== undefined) {
    const ip = ipToInt(explicit);
    if (!contains(c, ip))
      throw InvalidInput.field(field, `${field} ${explicit} is outside the network ${net.cidr}`);
    const want = blockOf(ip, len);
    if (ip === want.base || ip === want.base + 1 || ip === broadcast(want)) {
      throw InvalidInput.field(
        field,
        `${field} ${explicit} is reserved in block ${formatCidr(want)} (network, gateway or broadcast address)`,
      );
    }
    const owner = blocks.find((b) => b.cidr.base === want.base);
    if (owner && owner.hostId !== hostId) {
      throw new Conflict(
        `IP address ${explicit} lies in block ${formatCidr(want)}, which belongs to another host`,
      );
    }
    if (await ipInUse(tx, net.id, explicit))
      throw new Conflict(`IP address ${explicit} is already in use in network "${net.name}"`);
    return { ip: explicit, newBlock: owner ? undefined : await claimBlock(tx, net, hostId, want) };
  }
  for (const b of blocks.filter((x) => x.hostId === hostId)) {
    const ip = await lowestFree(tx, net.id, b.cidr.base + 2, broadcast(b.cidr) - 1, NO_RESERVED);
    if (ip) return { ip };
  }
  const taken = new Set(blocks.map((b) => b.cidr.base));
  const size = cidrSize({ base: 0, prefix: len });
  for (let base = c.base; base < c.base + cidrSize(c); base += size) {
    if (taken.has(base)) continue;
    const newBlock = await claimBlock(tx, net, hostId, { base, prefix: len });
    return { ip: intToIp(base + 2), newBlock };
  }
  throw new Conflict(
    `network "${net.name}" (${net.cidr}) is exhausted: no free /${len} block for this host`,
  );
}

/** Releases the host's block that held `ip` when its last instance is gone. */
export async function releaseBlockIfEmpty(
  tx: Tx,
  net: NetworkEntity,
  hostId: string,
  ip: string,
): Promise<void> {
  if (!isBlockBased(net)) return;
  const block = formatCidr(blockOf(ipToInt(ip), net.blockPrefixLen!));
  const rows = await tx.query<{ cidr: string }>(
    `DELETE FROM host_blocks b WHERE b.cidr = $1::cidr AND b.host_id = $2
       AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.network_id = b.network_id AND i.ip << b.cidr)
     RETURNING cidr::text AS cidr`,
    [block, hostId],
  );
  if (rows.length > 0) tx.record({ type: 'block.delete', cidr: block });
}
