import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { DataSource } from 'typeorm';
import { NetworkEntity } from '../../apps/controller/src/database/entities.js';
import {
  freeAddresses,
  freeAddressesMany,
  type AddressRequest,
} from '../../apps/controller/src/instances/ipam.js';
import { Tx } from '../../apps/controller/src/revisions/revision-log.js';
import { startController, type TestController } from '../support/controller.js';

/**
 * `freeAddressesMany` (DESIGN.md "IPAM"): a whole bulk's automatic addresses in a constant
 * number of statements, equal to what successive `freeAddresses` calls give on the same
 * state — the same addresses, the same blocks claimed and recorded, the same free ranges
 * left behind — with the free-range tables staying disjoint and consistent.
 */
let t: TestController;
let ds: DataSource;
const hosts: any[] = [];
beforeAll(async () => {
  t = await startController();
  ds = t.controller.dataSource;
  for (let i = 0; i < 10; i++) hosts.push(await t.newHost());
});
afterAll(() => t?.close());

const SHARED = '00000000-0000-0000-0000-000000000000';
const ipToInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const cidrOf = (cidr: string) => {
  const [ip, len] = cidr.split('/');
  return { base: ipToInt(ip), size: 2 ** (32 - Number(len)) };
};

let seq = 0;
const bulk = (network: string, host: string, count: number, extra: object[] = []) =>
  t.post('/instances/bulk', {
    instances: [
      ...Array.from({ length: count }, () => ({ name: `am-${++seq}`, network, host })),
      ...extra,
    ],
  });

const entity = (id: string) => ds.getRepository(NetworkEntity).findOneByOrFail({ id });

/** Runs `work` in a transaction of its own on the controller's pool, then rolls it back. */
async function rolledBack<T>(work: (tx: Tx) => Promise<T>): Promise<T> {
  const qr = ds.createQueryRunner();
  await qr.connect();
  await qr.startTransaction();
  try {
    return await work(new Tx(qr.manager));
  } finally {
    await qr.rollbackTransaction();
    await qr.release();
  }
}

/** What the allocation tables hold, as seen by `tx`. */
async function tables(tx: Tx) {
  return {
    addresses: await tx.query(
      `SELECT network_id, owner, lo::text, hi::text FROM free_addresses ORDER BY network_id, owner, hi`,
    ),
    blocks: await tx.query(
      `SELECT network_id, lo::text, hi::text FROM free_blocks ORDER BY network_id, hi`,
    ),
    hostBlocks: await tx.query(
      `SELECT cidr::text, network_id, host_id FROM host_blocks ORDER BY cidr`,
    ),
  };
}

/**
 * The invariants of the free-range tables after `requests` got `got` (not inserted as
 * instances): ranges disjoint and maximal per space; a host's free addresses inside its own
 * blocks (not their reserved addresses); free and claimed blocks disjoint and making up the
 * network; no instance or handed-out address free; and free + used + handed out + reserved
 * adding up to the network (block-based: to its claimed blocks).
 */
async function expectConsistent(
  tx: Tx,
  requests: readonly AddressRequest[],
  got: string[][],
): Promise<void> {
  const [bad] = await tx.query<Record<string, number>>(
    `SELECT
       (SELECT count(*)::int FROM (SELECT lo, lag(hi) OVER (PARTITION BY network_id, owner ORDER BY hi) AS prev
          FROM free_addresses) x WHERE lo <= prev + 1) AS unmerged,
       (SELECT count(*)::int FROM (SELECT lo, lag(hi) OVER (PARTITION BY network_id ORDER BY hi) AS prev
          FROM free_blocks) x WHERE lo <= prev + 1) AS unmerged_blocks,
       (SELECT count(*)::int FROM free_addresses f WHERE f.owner <> $1 AND NOT EXISTS (
          SELECT 1 FROM host_blocks b WHERE b.network_id = f.network_id AND b.host_id = f.owner
             AND f.lo >= (b.cidr - '0.0.0.0'::inet) + 2 AND f.hi <= broadcast(b.cidr) - '0.0.0.0'::inet - 1)) AS stray,
       (SELECT count(*)::int FROM free_blocks f JOIN networks n ON n.id = f.network_id JOIN host_blocks b
          ON b.network_id = f.network_id
         AND ((b.cidr - '0.0.0.0'::inet) >> (32 - n.block_prefix_len)) BETWEEN f.lo AND f.hi) AS claimed_free,
       (SELECT count(*)::int FROM instances i JOIN free_addresses f ON f.network_id = i.network_id
          AND (i.ip - '0.0.0.0'::inet) BETWEEN f.lo AND f.hi) AS clash`,
    [SHARED],
  );
  expect(bad).toEqual({ unmerged: 0, unmerged_blocks: 0, stray: 0, claimed_free: 0, clash: 0 });
  const taken = new Map<string, number[]>();
  for (const [i, r] of requests.entries()) {
    const list = taken.get(r.net.id) ?? [];
    list.push(...got[i].map(ipToInt));
    taken.set(r.net.id, list);
    const ex = new Set(r.exclude);
    for (const ip of got[i]) expect(ex.has(ip)).toBe(false);
    expect(got[i].map(ipToInt)).toEqual([...got[i].map(ipToInt)].sort((a, b) => a - b));
    expect(got[i].length).toBeLessThanOrEqual(Math.max(0, r.count));
  }
  for (const [net, xs] of taken) {
    expect(new Set(xs).size).toBe(xs.length);
    const [c] = await tx.query<Record<string, string>>(
      `SELECT n.cidr::text AS cidr, n.block_prefix_len AS len,
         (SELECT count(*) FROM free_addresses f WHERE f.network_id = $1
             AND f.lo <= ANY($2::bigint[]) AND f.hi >= ANY($2::bigint[])
             AND EXISTS (SELECT 1 FROM unnest($2::bigint[]) x WHERE x BETWEEN f.lo AND f.hi)) AS free_taken,
         (SELECT coalesce(sum(hi - lo + 1), 0) FROM free_addresses WHERE network_id = $1) AS free,
         (SELECT count(*) FROM instances WHERE network_id = $1) AS used,
         (SELECT count(*) FROM host_blocks WHERE network_id = $1) AS blocks,
         (SELECT coalesce(sum(hi - lo + 1), 0) FROM free_blocks WHERE network_id = $1) AS free_blocks
       FROM networks n WHERE n.id = $1`,
      [net, xs],
    );
    expect(Number(c.free_taken)).toBe(0);
    const { size } = cidrOf(c.cidr);
    const inUse = Number(c.free) + Number(c.used) + xs.length;
    if (c.len !== null) {
      const bs = 2 ** (32 - Number(c.len));
      expect(inUse + 3 * Number(c.blocks)).toBe(Number(c.blocks) * bs);
      expect(Number(c.free_blocks) + Number(c.blocks)).toBe(size / bs);
    } else expect(inUse + 3).toBe(size);
  }
}

/** Counts the statements `tx` issues from now on. */
function counting(tx: Tx): () => number {
  let n = 0;
  const query = tx.query.bind(tx);
  tx.query = (sql: string, params?: unknown[]) => (n++, query(sql, params));
  return () => n;
}

/** Successive `freeAddresses` calls (the reference) against one `freeAddressesMany`. */
async function compare(requests: readonly AddressRequest[]) {
  const reference = await rolledBack(async (tx) => {
    const got: string[][] = [];
    for (const r of requests)
      got.push(await freeAddresses(tx, r.net, r.count, r.exclude, r.hostId));
    return { got, changes: tx.changes, tables: await tables(tx) };
  });
  const many = await rolledBack(async (tx) => {
    const statements = counting(tx);
    const got = await freeAddressesMany(tx, requests);
    const n = statements();
    await expectConsistent(tx, requests, got);
    return { got, changes: tx.changes, tables: await tables(tx), statements: n };
  });
  expect(many.got).toEqual(reference.got);
  expect(many.changes).toEqual(reference.changes);
  expect(many.tables).toEqual(reference.tables);
  expect(many.statements).toBeLessThanOrEqual(2);
  return many;
}

interface Net {
  body: any;
  entity: NetworkEntity;
  base: number;
  size: number;
  blockBased: boolean;
}

async function network(
  model: string,
  cidr: string,
  extra: Record<string, unknown> = {},
): Promise<Net> {
  const body = await t.newNetwork(model, cidr, extra);
  const { base, size } = cidrOf(cidr);
  return {
    body,
    entity: await entity(body.id),
    base,
    size,
    blockBased: body.blockPrefixLen != null,
  };
}

describe('freeAddressesMany', () => {
  let nets: Net[];
  beforeAll(async () => {
    nets = [
      await network('bridge', '10.10.0.0/16'),
      await network('bridge', '10.11.0.0/24'),
      await network('bridge', '10.12.0.0/30'),
      await network('vlan', '10.13.0.0/24', { gateway: '10.13.0.254' }),
      await network('fabric', '10.14.0.0/28'),
      await network('routed', '10.20.0.0/16'),
      await network('routed', '10.21.0.0/24', { blockPrefixLen: 28 }),
      await network('overlay', '10.22.0.0/30', { encapsulation: 'gre' }),
      await network('overlay', '10.23.0.0/27', { encapsulation: 'ipip', blockPrefixLen: 30 }),
      await network('routed', '10.24.0.0/24', { blockPrefixLen: 29 }),
    ];
    const [s16, s24, , vlan, , r16, r24, , , r29] = nets.map((n) => n.body.name);
    const [h0, h1, h2, h3] = hosts.map((h) => h.name);
    // fragmented shared subnets, one near exhaustion
    await bulk(s16, h0, 300).expect(201);
    for (const ip of ['10.10.0.40', '10.10.0.41', '10.10.0.77', '10.10.1.2', '10.10.1.40'])
      await t.del(`/instances/${(await instanceAt(ip)).name}`).expect(200);
    await t.newInstance(s16, h1, { ip: '10.10.200.1' });
    await bulk(s24, h0, 20).expect(201);
    await t.del(`/instances/${(await instanceAt('10.11.0.9')).name}`).expect(200);
    await bulk(vlan, h0, 245).expect(201);
    // hosts with blocks: partly used, full, one high up in the network, one given back
    await bulk(r16, h0, 70).expect(201);
    await bulk(r16, h1, 61).expect(201);
    await t.newInstance(r16, h2, { ip: '10.20.255.10' });
    await bulk(r16, h3, 3).expect(201);
    await t.del(`/instances/${(await instanceAt('10.20.0.195')).name}`).expect(200);
    await bulk(r24, h0, 100).expect(201);
    await bulk(r24, h1, 50).expect(201);
    await t.newInstance(r29, h2, { ip: '10.24.0.203' });
    await bulk(r29, h3, 12).expect(201);
  });

  async function instanceAt(ip: string): Promise<any> {
    const [row] = await ds.query('SELECT name FROM instances WHERE ip = $1::inet', [ip]);
    return row;
  }

  /** A random bulk's requests: some networks, some hosts, counts and excludes, any order. */
  const mix = () =>
    fc
      .tuple(
        ...Array.from({ length: 10 }, (_, n) =>
          fc.record({
            on: fc.boolean(),
            count: fc.oneof(
              fc.integer({ min: 0, max: 4 }),
              fc.integer({ min: 0, max: 70 }),
              fc.integer({ min: 0, max: 300 }),
            ),
            // addresses near the bottom of the network, where allocation happens
            exclude: fc.uniqueArray(fc.integer({ min: 0, max: n < 5 ? 700 : 1200 }), {
              maxLength: 5,
            }),
            hosts: fc.array(
              fc.record({
                count: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 140 })),
                exclude: fc.uniqueArray(fc.integer({ min: 0, max: 1200 }), { maxLength: 3 }),
              }),
              { minLength: 4, maxLength: 4 },
            ),
            hostMask: fc.integer({ min: 0, max: 15 }),
            keys: fc.array(fc.integer(), { minLength: 5, maxLength: 5 }),
          }),
        ),
      )
      .map((specs) => {
        const out: { key: number; r: AddressRequest }[] = [];
        for (const [n, s] of specs.entries()) {
          const net = nets[n];
          if (!s.on) continue;
          const ex = s.exclude.map((o) => intToIp(net.base + (o % net.size)));
          if (!net.blockBased) {
            out.push({ key: s.keys[0], r: { net: net.entity, count: s.count, exclude: ex } });
            continue;
          }
          for (const [h, hs] of s.hosts.entries()) {
            if (!(s.hostMask & (1 << h))) continue;
            // the bulk's explicit addresses of the network, plus (sometimes) others of this host
            const own = hs.exclude.map((o) => intToIp(net.base + (o % net.size)));
            out.push({
              key: s.keys[h + 1],
              r: {
                net: net.entity,
                count: hs.count,
                exclude: h % 2 ? ex : [...ex, ...own],
                hostId: hosts[h].id,
              },
            });
          }
        }
        return out.sort((a, b) => a.key - b.key).map((x) => x.r);
      });

  it('gives what successive freeAddresses calls give, on random bulks, as networks fill up', async () => {
    const [, s24, s30, vlan, s28, r16, r24, , r30, r29] = nets.map((n) => n.body.name);
    const fill: [string, number][] = [
      [s24, 120],
      [vlan, 4],
      [s28, 10],
      [s30, 1],
      [r16, 200],
      [r24, 40],
      [r30, 4],
      [r29, 60],
    ];
    for (let round = 0; round < 3; round++) {
      await fc.assert(
        fc.asyncProperty(mix(), async (requests) => {
          await compare(requests);
        }),
        { numRuns: 25 },
      );
      // fill the networks some more (a 409 when one is exhausted is fine)
      for (const [i, [name, n]] of fill.entries()) await bulk(name, hosts[(round + i) % 4].name, n);
    }
  });

  it('near and at exhaustion: /30s, a full /24, blocks running out for several hosts', async () => {
    const [, , s30, vlan, , , r24, g30, r30, r29] = nets;
    const reqs = (net: Net, counts: number[], exclude: string[] = []): AddressRequest[] =>
      counts.map((count, h) => ({
        net: net.entity,
        count,
        exclude,
        hostId: net.blockBased ? hosts[h].id : undefined,
      }));
    const r = await compare([
      ...reqs(s30, [5]),
      ...reqs(vlan, [500], ['10.13.0.250']),
      ...reqs(g30, [2]),
      ...reqs(r30, [3, 0, 2, 9], ['10.23.0.6', '10.23.0.22']),
      ...reqs(r24, [200, 1, 30, 7, 60]),
      ...reqs(r29, [40, 40, 40, 40, 40, 40], ['10.24.0.100']),
    ]);
    expect(r.got.every((g) => g.length <= 500)).toBe(true);
    // every block is claimed in the end
    expect(
      r.tables.blocks.filter((b: any) =>
        [r24, g30, r30, r29].some((n) => n.body.id === b.network_id),
      ),
    ).toEqual([]);
  });

  it('claims and records new blocks for every (network, host) pair in two statements', async () => {
    const routed: Net[] = [];
    for (let i = 0; i < 30; i++)
      routed.push(await network('routed', `10.${100 + i}.0.0/22`, { blockPrefixLen: 28 }));
    // half the hosts already have a block in half the networks
    for (const [i, n] of routed.entries())
      if (i % 2 === 0)
        for (let h = 0; h < 10; h += 2) await t.newInstance(n.body.name, hosts[h].name);
    const requests: AddressRequest[] = routed.flatMap((n, i) =>
      hosts.map((h, j) => ({
        net: n.entity,
        count: 1 + ((i + j) % 20),
        exclude: j === 3 ? [intToIp(n.base + 20)] : [],
        hostId: h.id,
      })),
    );
    expect(requests).toHaveLength(300);
    const r = await compare(requests);
    expect(r.statements).toBe(2);
    const upserts = r.changes.filter((c: any) => c.type === 'block.upsert');
    expect(upserts.length).toBeGreaterThan(150);
    expect(new Set(upserts.map((c: any) => c.block.cidr)).size).toBe(upserts.length);
    // a bulk whose hosts all have room: one statement
    const small = await rolledBack(async (tx) => {
      const statements = counting(tx);
      const got = await freeAddressesMany(
        tx,
        routed
          .filter((_, i) => i % 2 === 0)
          .map((net) => ({ net: net.entity, count: 2, exclude: [], hostId: hosts[0].id })),
      );
      return { n: statements(), got };
    });
    expect(small.n).toBe(1);
    expect(small.got.every((g) => g.length === 2)).toBe(true);
    expect(await rolledBack((tx) => freeAddressesMany(tx, []))).toEqual([]);
  });

  it('refuses two requests for one host in one block-based network, or none', async () => {
    const net = nets[5].entity;
    await expect(
      rolledBack((tx) =>
        freeAddressesMany(tx, [
          { net, count: 1, exclude: [], hostId: hosts[0].id },
          { net, count: 1, exclude: [], hostId: hosts[0].id },
        ]),
      ),
    ).rejects.toThrow('two requests');
    await expect(
      rolledBack((tx) => freeAddressesMany(tx, [{ net, count: 1, exclude: [] }])),
    ).rejects.toThrow('need a host');
    // a shared subnet asked twice: the second request gets what the first left
    const shared = nets[1].entity;
    const r = await compare([
      { net: shared, count: 3, exclude: [] },
      { net: shared, count: 3, exclude: ['10.11.0.200'] },
    ]);
    expect(new Set(r.got.flat()).size).toBe(6);
  });

  it('a bulk with an explicit address in the host block it fills up (an API create)', async () => {
    const n = await network('routed', '10.30.0.0/24', { blockPrefixLen: 28 });
    expect((await t.newInstance(n.body.name, hosts[0].name)).ip).toBe('10.30.0.2');
    // 13 more addresses than the block has left, and .10 of that block asked for explicitly
    const res = await bulk(n.body.name, hosts[0].name, 15, [
      { name: 'am-x', network: n.body.name, host: hosts[0].name, ip: '10.30.0.10' },
    ]).expect(201);
    const ips = res.body.items.map((i: any) => i.ip);
    expect(new Set(ips).size).toBe(16);
    expect(res.body.items.find((i: any) => i.name === 'am-x').ip).toBe('10.30.0.10');
  });

  it('timing: a benchmark-like bulk (1,000 addresses, 100 networks, a third block-based)', async () => {
    const bench: Net[] = [];
    for (let i = 0; i < 100; i++)
      bench.push(
        i % 3 === 0
          ? await network('routed', `10.${140 + Math.floor(i / 3)}.0.0/16`)
          : await network('bridge', `172.${16 + (i % 16)}.${i}.0/24`),
      );
    const requests: AddressRequest[] = bench.flatMap((n) =>
      n.blockBased
        ? hosts.map((h) => ({ net: n.entity, count: 1, exclude: [], hostId: h.id }))
        : [{ net: n.entity, count: 10, exclude: [] }],
    );
    expect(requests.reduce((a, r) => a + r.count, 0)).toBe(1000);
    const time = async (work: (tx: Tx) => Promise<unknown>) => {
      const ms: number[] = [];
      for (let i = 0; i < 7; i++) {
        ms.push(
          await rolledBack(async (tx) => {
            const t0 = performance.now();
            await work(tx);
            return performance.now() - t0;
          }),
        );
      }
      return ms.sort((a, b) => a - b)[3];
    };
    const sequential = await time(async (tx) => {
      for (const r of requests) await freeAddresses(tx, r.net, r.count, r.exclude, r.hostId);
    });
    const many = await time((tx) => freeAddressesMany(tx, requests));
    console.log(
      `freeAddressesMany, ${requests.length} requests (1,000 addresses, 100 networks, ` +
        `${requests.filter((r) => r.hostId).length} new blocks): ` +
        `${many.toFixed(1)} ms; sequential freeAddresses: ${sequential.toFixed(1)} ms (medians of 7)`,
    );
    await compare(requests);
  });
});
