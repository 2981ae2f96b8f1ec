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
  type HostBlock,
} from '../../../../libs/model/src/index.js';
import { Conflict, InvalidInput } from '../common/errors.js';
import type { NetworkEntity } from '../database/entities.js';
import {
  addRanges,
  give,
  take,
  takeLowest,
  takeLowestMany,
  type Extra,
  type Space,
  type Spaces,
} from '../pools/free-ranges.js';
import type { Tx } from '../revisions/revision-log.js';

/**
 * IP address management over free-range tables (`free_addresses`, `free_blocks`; see
 * `pools/free-ranges.ts`): allocation takes the lowest free range's first address, an
 * explicit address splits its range, a release merges it back — O(log n) index work per
 * address whatever the network's size, never a scan of the addresses in use. The ranges
 * change in the same transaction as the instance rows, so a rollback (or a rolled-back
 * savepoint) undoes both.
 *
 * Callers hold the network's row lock (FOR NO KEY UPDATE), so allocations within one
 * network are serialised; the (network, ip) unique constraint and the blocks' exclusion
 * constraint are the database's own guarantee.
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

/** `free_addresses.owner` of shared-subnet networks (block-based: the block's host). */
const SHARED = '00000000-0000-0000-0000-000000000000';

const addresses = (net: NetworkEntity, owner = SHARED): Space => ({
  table: 'free_addresses',
  cols: ['network_id', 'owner'],
  types: ['uuid', 'uuid'],
  key: [net.id, owner],
});

const blocks = (net: NetworkEntity): Space => ({
  table: 'free_blocks',
  cols: ['network_id'],
  types: ['uuid'],
  key: [net.id],
});

const blockSize = (net: NetworkEntity) => 2 ** (32 - net.blockPrefixLen!);

/**
 * Claims the blocks of `hit` (block numbers) for the host in the same statement: their
 * `host_blocks` rows, and their addresses as the host's free ranges from the block's
 * address `2 + skip` on (the first `skip` usable ones being handed out by the caller).
 */
function claiming(net: NetworkEntity, hostId: string, skip: number): Extra {
  return (n) => ({
    sql: `hb AS (INSERT INTO host_blocks (cidr, network_id, host_id)
                 SELECT network(set_masklen('0.0.0.0'::inet + x * $${n}::bigint, $${n + 1}::int)), $1::uuid, $${n + 2}::uuid FROM hit),
          fa AS (INSERT INTO free_addresses (network_id, owner, lo, hi)
                 SELECT $1::uuid, $${n + 2}::uuid, x * $${n}::bigint + 2 + $${n + 3}::bigint, x * $${n}::bigint + $${n}::bigint - 2
                   FROM hit WHERE 2 + $${n + 3}::bigint <= $${n}::bigint - 2)`,
    params: [blockSize(net), net.blockPrefixLen, hostId, skip],
  });
}

function claimed(tx: Tx, net: NetworkEntity, hostId: string, blockNo: number): HostBlock {
  const size = blockSize(net);
  const b: HostBlock = {
    networkId: net.id,
    hostId,
    cidr: formatCidr({ base: blockNo * size, prefix: net.blockPrefixLen! }),
  };
  tx.record({ type: 'block.upsert', block: b });
  return b;
}

/** Fills the free ranges of a network just inserted (one statement). */
export async function initNetworkRanges(tx: Tx, net: NetworkEntity): Promise<void> {
  const c = parseCidr(net.cidr)!;
  if (isBlockBased(net)) {
    const size = blockSize(net);
    await addRanges(tx, blocks(net), [{ lo: c.base / size, hi: (broadcast(c) + 1) / size - 1 }]);
    return;
  }
  const gw = ipToInt(net.gateway);
  await addRanges(tx, addresses(net), [
    { lo: c.base + 1, hi: gw - 1 },
    { lo: gw + 1, hi: broadcast(c) - 1 },
  ]);
}

/**
 * Up to `count` lowest free addresses for a bulk create, in one statement for shared-subnet
 * networks (three for block-based ones, which claim the blocks needed for `hostId`),
 * skipping the addresses in `exclude` (asked for explicitly by the same bulk; for
 * block-based networks their blocks are not claimed either). The addresses are taken: the
 * caller inserts them in the same transaction. Fewer than `count` means the network is
 * exhausted (the caller fails, and the transaction's rollback gives them back). Ascending.
 * A whole bulk's requests at once: `freeAddressesMany`.
 */
export async function freeAddresses(
  tx: Tx,
  net: NetworkEntity,
  count: number,
  exclude: readonly string[],
  hostId?: string,
): Promise<string[]> {
  if (count === 0) return [];
  const ex = exclude.map(ipToInt);
  if (!isBlockBased(net)) return (await takeLowest(tx, addresses(net), count, ex)).map(intToIp);
  if (hostId === undefined) throw new Error('freeAddresses: block-based networks need a host');
  const own = await takeLowest(tx, addresses(net, hostId), count, ex);
  const missing = count - own.length;
  if (missing === 0) return own.map(intToIp);
  const size = blockSize(net);
  const perBlock = Math.max(1, size - 3);
  const exBlocks = [...new Set(ex.map((ip) => Math.floor(ip / size)))];
  const got = await takeLowest(
    tx,
    blocks(net),
    Math.ceil(missing / perBlock),
    exBlocks,
    claiming(net, hostId, 0),
  );
  for (const b of got) claimed(tx, net, hostId, b);
  // (`ex` again: the excluded addresses of the host's blocks are still free)
  const more = got.length > 0 ? await takeLowest(tx, addresses(net, hostId), missing, ex) : [];
  return [...own, ...more].sort((a, b) => a - b).map(intToIp);
}

/** One network's (block-based: one host's) part of a bulk, for `freeAddressesMany`. */
export interface AddressRequest {
  readonly net: NetworkEntity;
  readonly count: number;
  readonly exclude: readonly string[];
  /** Required for block-based networks; ignored for shared-subnet ones. */
  readonly hostId?: string;
}

const ADDRESSES: Spaces = {
  table: 'free_addresses',
  cols: ['network_id', 'owner'],
  types: ['uuid', 'uuid'],
};
const BLOCKS: Spaces = { table: 'free_blocks', cols: ['network_id'], types: ['uuid'] };

/** Addresses a host can use in a block (all but its network, gateway and broadcast). */
const perBlock = (net: NetworkEntity) => Math.max(1, blockSize(net) - 3);

/**
 * `claiming` for many hosts at once: the blocks of `hit(i, network_id, x)` go to the host
 * of claim `i`, and the first `missing` addresses of its new blocks (in block order) are
 * handed out by the caller; the rest of each block becomes the host's free range.
 */
function claimingMany(
  claims: readonly { hostId: string; size: number; prefix: number; missing: number }[],
): Extra {
  return (n) => ({
    sql: `cb AS (SELECT * FROM unnest($${n}::int[], $${n + 1}::uuid[], $${n + 2}::bigint[], $${n + 3}::int[], $${n + 4}::bigint[])
                   AS cb(i, host, size, prefix, missing)),
          nb AS (SELECT hit.network_id, hit.x, cb.host, cb.size, cb.prefix,
                        least(greatest(1, cb.size - 3), greatest(0, cb.missing
                          - (row_number() OVER (PARTITION BY hit.i ORDER BY hit.x) - 1) * greatest(1, cb.size - 3))) AS used
                   FROM hit JOIN cb ON cb.i = hit.i),
          hb AS (INSERT INTO host_blocks (cidr, network_id, host_id)
                 SELECT network(set_masklen('0.0.0.0'::inet + x * size, prefix)), network_id, host FROM nb),
          fa AS (INSERT INTO free_addresses (network_id, owner, lo, hi)
                 SELECT network_id, host, x * size + 2 + used, x * size + size - 2 FROM nb WHERE 2 + used <= size - 2)`,
    params: [
      [...claims.keys()],
      claims.map((c) => c.hostId),
      claims.map((c) => c.size),
      claims.map((c) => c.prefix),
      claims.map((c) => c.missing),
    ],
  });
}

/**
 * `freeAddresses` for a whole bulk: the addresses of every request (in the order of
 * `requests`, each ascending; fewer than its `count` where its network is exhausted), as
 * successive `freeAddresses` calls would give them, in at most two statements whatever the
 * number of requests:
 *
 * 1. one `takeLowestMany` over `free_addresses` for every shared subnet and every host's
 *    existing blocks;
 * 2. only when some hosts' blocks ran short: one `takeLowestMany` over `free_blocks` that
 *    claims the blocks all those (network, host) pairs still need (the hosts of a network
 *    in request order, each avoiding the blocks of its `exclude`), inserts their
 *    `host_blocks` rows and their free ranges minus the addresses handed out from them.
 *
 * New blocks are recorded (`block.upsert`). Block-based networks need `hostId`, and at most
 * one request per (network, host); requests for the same shared subnet are served in order.
 * Callers hold the networks' row locks.
 */
export async function freeAddressesMany(
  tx: Tx,
  requests: readonly AddressRequest[],
): Promise<string[][]> {
  const pairs = new Set<string>();
  for (const r of requests) {
    if (!isBlockBased(r.net) || r.count <= 0) continue;
    if (r.hostId === undefined)
      throw new Error('freeAddressesMany: block-based networks need a host');
    const pair = `${r.net.id}/${r.hostId}`;
    if (pairs.has(pair)) throw new Error(`freeAddressesMany: two requests for ${pair}`);
    pairs.add(pair);
  }
  const ex = requests.map((r) => r.exclude.map(ipToInt));
  const own = await takeLowestMany(
    tx,
    ADDRESSES,
    requests.map((r, i) => ({
      key: [r.net.id, isBlockBased(r.net) ? r.hostId : SHARED],
      n: Math.max(0, r.count),
      exclude: ex[i],
    })),
  );
  const short = [...requests.keys()].filter(
    (i) => isBlockBased(requests[i].net) && own[i].length < requests[i].count,
  );
  if (short.length > 0) {
    const claims = short.map((i) => {
      const { net, count, hostId } = requests[i];
      const size = blockSize(net);
      const missing = count - own[i].length;
      return {
        key: [net.id],
        n: Math.ceil(missing / perBlock(net)),
        exclude: [...new Set(ex[i].map((ip) => Math.floor(ip / size)))],
        hostId: hostId!,
        size,
        prefix: net.blockPrefixLen!,
        missing,
      };
    });
    const got = await takeLowestMany(tx, BLOCKS, claims, claimingMany(claims));
    for (const [j, i] of short.entries()) {
      const { net, hostId } = requests[i];
      const { size, missing } = claims[j];
      const per = perBlock(net);
      for (const [o, b] of got[j].entries()) {
        claimed(tx, net, hostId!, b);
        const used = Math.min(per, missing - o * per);
        for (let a = 0; a < used; a++) own[i].push(b * size + 2 + a);
      }
      own[i].sort((a, b) => a - b);
    }
  }
  return own.map((ips) => ips.map(intToIp));
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

const inUse = (net: NetworkEntity, ip: string) =>
  new Conflict(`IP address ${ip} is already in use in network "${net.name}"`);

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
    // Every other address of the subnet is allocatable: not free means in use.
    if ((await take(tx, addresses(net), [ip])).length === 0) throw inUse(net, explicit);
    return { ip: explicit };
  }
  const [ip] = await takeLowest(tx, addresses(net), 1);
  if (ip === undefined)
    throw new Conflict(`network "${net.name}" (${net.cidr}) is exhausted: no free address`);
  return { ip: intToIp(ip) };
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
  const size = blockSize(net);
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
    const [owner] = await tx.query<{ host_id: string }>(
      'SELECT host_id FROM host_blocks WHERE cidr = $1::cidr',
      [formatCidr(want)],
    );
    if (owner && owner.host_id !== hostId) {
      throw new Conflict(
        `IP address ${explicit} lies in block ${formatCidr(want)}, which belongs to another host`,
      );
    }
    let newBlock: HostBlock | undefined;
    if (!owner) {
      const [b] = await take(tx, blocks(net), [want.base / size], claiming(net, hostId, 0));
      if (b === undefined)
        throw new Conflict(`block ${formatCidr(want)} of network "${net.name}" is not free`);
      newBlock = claimed(tx, net, hostId, b);
    }
    if ((await take(tx, addresses(net, hostId), [ip])).length === 0) throw inUse(net, explicit);
    return { ip: explicit, newBlock };
  }
  const [ip] = await takeLowest(tx, addresses(net, hostId), 1);
  if (ip !== undefined) return { ip: intToIp(ip) };
  // The host's blocks are full: claim the lowest free block, hand out its first address.
  const [b] = await takeLowest(tx, blocks(net), 1, [], claiming(net, hostId, 1));
  if (b === undefined) {
    throw new Conflict(
      `network "${net.name}" (${net.cidr}) is exhausted: no free /${len} block for this host`,
    );
  }
  return { ip: intToIp(b * size + 2), newBlock: claimed(tx, net, hostId, b) };
}

/**
 * Gives a deleted instance's address back (the instance row is already gone). In a
 * block-based network, the host's block goes back too when this was its last instance.
 */
export async function releaseAddress(
  tx: Tx,
  net: NetworkEntity,
  hostId: string,
  ip: string,
): Promise<void> {
  const x = ipToInt(ip);
  if (!isBlockBased(net)) {
    await give(tx, addresses(net), x);
    return;
  }
  const free = await give(tx, addresses(net, hostId), x);
  const block = blockOf(x, net.blockPrefixLen!);
  if (free.lo !== block.base + 2 || free.hi !== broadcast(block) - 1) return;
  // The block's whole range is free; the instances index confirms it is empty.
  const cidr = formatCidr(block);
  const rows = await tx.query<{ cidr: string }>(
    `WITH hb AS (
       DELETE FROM host_blocks b WHERE b.cidr = $1::cidr AND b.host_id = $2
          AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.network_id = b.network_id AND i.ip << b.cidr)
       RETURNING cidr),
     fa AS (DELETE FROM free_addresses f USING hb
             WHERE f.network_id = $3 AND f.owner = $2 AND f.hi = $4)
     SELECT cidr::text AS cidr FROM hb`,
    [cidr, hostId, net.id, free.hi],
  );
  if (rows.length === 0) return;
  await give(tx, blocks(net), block.base / cidrSize(block));
  tx.record({ type: 'block.delete', cidr });
}

/** An instance row for `insertAtLowestFree`. */
export interface NewInstanceRow {
  readonly name: string;
  readonly hostId: string;
  readonly mac: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly revision: number;
}

export type Inserted =
  | { readonly ok: true; readonly id: string; readonly ip: string; readonly createdAt: Date }
  /** No free address in the space (shared subnet: exhausted; block-based: no room in the host's blocks). */
  | { readonly ok: false; readonly reason: 'no-address' }
  /** A unique value clashed (name or MAC): nothing was written. */
  | { readonly ok: false; readonly reason: 'conflict' };

/**
 * The fast path of a single create: takes the lowest free address of the network (or of
 * the host's blocks, for block-based networks) and inserts the instance with it, in ONE
 * statement that writes all or nothing — the range shrinks only if the row went in
 * (`ON CONFLICT DO NOTHING` on every unique value, the range update conditioned on the
 * insert's RETURNING). It therefore needs no savepoint of its own inside a batch.
 */
export async function insertAtLowestFree(
  tx: Tx,
  net: NetworkEntity,
  row: NewInstanceRow,
): Promise<Inserted> {
  const owner = isBlockBased(net) ? row.hostId : SHARED;
  const [r] = await tx.query<{
    free: boolean;
    id: string | null;
    ip: string | null;
    created_at: Date | null;
  }>(
    `WITH r AS (SELECT lo, hi FROM free_addresses f
                 WHERE f.network_id = $1::uuid AND f.owner = $2::uuid ORDER BY f.hi LIMIT 1),
          ins AS (INSERT INTO instances (name, network_id, host_id, ip, mac, labels, revision)
                  SELECT $3, $1::uuid, $4::uuid, '0.0.0.0'::inet + r.lo, $5::macaddr, $7::jsonb, $6 FROM r
                  ON CONFLICT DO NOTHING RETURNING id, host(ip) AS ip, created_at),
          upd AS (UPDATE free_addresses f SET lo = r.lo + 1 FROM r
                   WHERE f.network_id = $1::uuid AND f.owner = $2::uuid AND f.hi = r.hi
                     AND r.lo < r.hi AND EXISTS (SELECT 1 FROM ins)),
          del AS (DELETE FROM free_addresses f USING r
                   WHERE f.network_id = $1::uuid AND f.owner = $2::uuid AND f.hi = r.hi
                     AND r.lo = r.hi AND EXISTS (SELECT 1 FROM ins))
     SELECT EXISTS (SELECT 1 FROM r) AS free, ins.id, ins.ip, ins.created_at
       FROM (SELECT 1) AS one LEFT JOIN ins ON true`,
    [net.id, owner, row.name, row.hostId, row.mac, row.revision, JSON.stringify(row.labels)],
  );
  if (!r.free) return { ok: false, reason: 'no-address' };
  if (r.id === null) return { ok: false, reason: 'conflict' };
  return { ok: true, id: r.id, ip: r.ip!, createdAt: r.created_at! };
}
