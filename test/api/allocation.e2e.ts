import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import pg from 'pg';
import { give, take, takeLowest, type Space } from '../../apps/controller/src/pools/free-ranges.js';
import type { Tx } from '../../apps/controller/src/revisions/revision-log.js';
import { sql, startController, type TestController } from '../support/controller.js';

/**
 * Allocation over free ranges (DESIGN.md "IPAM" and "Pools"): lowest free first at any
 * network size, explicit values splitting ranges, releases merging back, blocks and pool
 * ids, rollbacks leaving no trace, and the accepted CIDR sizes.
 */
let t: TestController;
let h1: any, h2: any;
beforeAll(async () => {
  t = await startController();
  h1 = await t.newHost();
  h2 = await t.newHost();
});
afterAll(() => t?.close());

const ipToInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const intToIp = (n: number) => [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
const range = (from: string, count: number) =>
  Array.from({ length: count }, (_, i) => intToIp(ipToInt(from) + i));
/** The addresses of a bulk's items (which come sorted by name), in address order. */
const ipsOf = (res: { body: { items: { ip: string }[] } }) =>
  res.body.items.map((i) => i.ip).sort((a, b) => ipToInt(a) - ipToInt(b));
const fields = (res: { body: { details?: { field: string }[] } }) =>
  (res.body.details ?? []).map((d) => d.field).sort();

let seq = 0;
const bulk = (network: string, host: string, count: number, extra: object[] = []) =>
  t.post('/instances/bulk', {
    instances: [
      ...Array.from({ length: count }, () => ({ name: `al-${++seq}`, network, host })),
      ...extra,
    ],
  });

async function freeRanges(networkId: string, owner?: string): Promise<[string, string][]> {
  const rows = await sql<{ lo: string; hi: string }>(
    t.databaseUrl,
    `SELECT host('0.0.0.0'::inet + f.lo) AS lo, host('0.0.0.0'::inet + f.hi) AS hi
       FROM free_addresses f
      WHERE f.network_id = $1 AND ($2::uuid IS NULL OR f.owner = $2) ORDER BY f.hi`,
    [networkId, owner ?? null],
  );
  return rows.map((r) => [r.lo, r.hi]);
}

/**
 * The ranges are exactly the complement of what is used: no instance inside a free range,
 * and free + used + reserved add up to the network (shared subnets: network address,
 * gateway, broadcast; block-based: per claimed block its network, gateway and broadcast
 * addresses, with free + claimed blocks making up the CIDR).
 */
async function expectConsistent(net: any): Promise<void> {
  const [r] = await sql(
    t.databaseUrl,
    `SELECT
       (SELECT count(*)::int FROM instances i JOIN free_addresses f ON f.network_id = i.network_id
          AND (i.ip - '0.0.0.0'::inet) BETWEEN f.lo AND f.hi WHERE i.network_id = $1) AS clash,
       (SELECT coalesce(sum(hi - lo + 1), 0)::bigint FROM free_addresses WHERE network_id = $1) AS free,
       (SELECT count(*)::int FROM instances WHERE network_id = $1) AS used,
       (SELECT count(*)::int FROM host_blocks WHERE network_id = $1) AS blocks,
       (SELECT coalesce(sum(hi - lo + 1), 0)::bigint FROM free_blocks WHERE network_id = $1) AS free_blocks,
       (SELECT count(*)::int FROM (SELECT lo, hi, lag(hi) OVER (PARTITION BY owner ORDER BY hi) AS prev
          FROM free_addresses WHERE network_id = $1) x WHERE lo <= prev + 1) AS unmerged`,
    [net.id],
  );
  expect(r.clash).toBe(0);
  expect(r.unmerged).toBe(0);
  const size = 2 ** (32 - Number(net.cidr.split('/')[1]));
  if (net.blockPrefixLen) {
    const blockSize = 2 ** (32 - net.blockPrefixLen);
    expect(Number(r.free) + r.used + 3 * r.blocks).toBe(r.blocks * blockSize);
    expect(Number(r.free_blocks) + r.blocks).toBe(size / blockSize);
  } else {
    expect(Number(r.free) + r.used + 3).toBe(size);
  }
}

describe('shared-subnet networks at any size', () => {
  it('a /8: first creates and a bulk of 1,000 take the lowest addresses', async () => {
    const n = await t.newNetwork('bridge', '10.0.0.0/8');
    const first = [];
    for (let i = 0; i < 3; i++) first.push((await t.newInstance(n.name, h1.name)).ip);
    expect(first).toEqual(['10.0.0.2', '10.0.0.3', '10.0.0.4']);
    const res = await bulk(n.name, h2.name, 1000).expect(201);
    expect(ipsOf(res)).toEqual(range('10.0.0.5', 1000));
    expect((await t.newInstance(n.name, h1.name)).ip).toBe(intToIp(ipToInt('10.0.0.5') + 1000));
    // one range left, however large the network
    expect(await freeRanges(n.id)).toEqual([['10.0.3.238', '10.255.255.254']]);
    await expectConsistent(n);
  });

  it('a /30: exactly one address besides the gateway, then 409 exhausted', async () => {
    const n = await t.newNetwork('overlay', '10.1.0.0/30');
    expect((await t.newInstance(n.name, h1.name)).ip).toBe('10.1.0.2');
    const ex = await t.post('/instances', { name: 'al-full', network: n.name, host: h1.name });
    expect(ex.status).toBe(409);
    expect(ex.body.message).toContain('exhausted');
    expect((await bulk(n.name, h1.name, 1).expect(409)).body.message).toContain('exhausted');
    await expectConsistent(n);
    // with the gateway on the last address, the first one is the instance's
    const g = await t.newNetwork('bridge', '10.1.0.4/30', { gateway: '10.1.0.6' });
    expect((await t.newInstance(g.name, h1.name)).ip).toBe('10.1.0.5');
    await t.post('/instances', { name: 'al-full', network: g.name, host: h1.name }).expect(409);
  });

  it('reuses released addresses, lowest first, merging ranges back', async () => {
    const n = await t.newNetwork('fabric', '10.2.0.0/24');
    const res = await bulk(n.name, h1.name, 6).expect(201);
    expect(ipsOf(res)).toEqual(range('10.2.0.2', 6));
    const made = res.body.items.sort((a: any, b: any) => ipToInt(a.ip) - ipToInt(b.ip));
    await t.del(`/instances/${made[3].name}`).expect(200); // .5
    await t.del(`/instances/${made[1].name}`).expect(200); // .3
    await t.del(`/instances/${made[2].name}`).expect(200); // .4: joins .3 and .5
    expect(await freeRanges(n.id)).toEqual([
      ['10.2.0.3', '10.2.0.5'],
      ['10.2.0.8', '10.2.0.254'],
    ]);
    const again = [];
    for (let i = 0; i < 4; i++) again.push((await t.newInstance(n.name, h2.name)).ip);
    expect(again).toEqual(['10.2.0.3', '10.2.0.4', '10.2.0.5', '10.2.0.8']);
    // deleting everything gives the whole subnet back as one range
    for (const i of (await t.get(`/instances?network=${n.name}`).expect(200)).body.items)
      await t.del(`/instances/${i.name}`).expect(200);
    expect(await freeRanges(n.id)).toEqual([['10.2.0.2', '10.2.0.254']]);
  });

  it('explicit addresses split their range; automatic ones go around them', async () => {
    const n = await t.newNetwork('vlan', '10.3.0.0/24', { gateway: '10.3.0.254' });
    await t.newInstance(n.name, h1.name, { ip: '10.3.0.3' });
    await t.newInstance(n.name, h1.name, { ip: '10.3.0.5' });
    expect(await freeRanges(n.id)).toEqual([
      ['10.3.0.1', '10.3.0.2'],
      ['10.3.0.4', '10.3.0.4'],
      ['10.3.0.6', '10.3.0.253'],
    ]);
    // an explicit address taken is a 409, the gateway a 400
    expect(
      (
        await t.post('/instances', {
          name: 'al-dup',
          network: n.name,
          host: h1.name,
          ip: '10.3.0.5',
        })
      ).status,
    ).toBe(409);
    expect(
      fields(
        await t
          .post('/instances', { name: 'al-gw', network: n.name, host: h1.name, ip: '10.3.0.254' })
          .expect(400),
      ),
    ).toEqual(['ip']);
    // a bulk mixing both: the explicit ones are kept out of the automatic draw
    const res = await bulk(n.name, h2.name, 4, [
      { name: 'al-x1', network: n.name, host: h2.name, ip: '10.3.0.2' },
      { name: 'al-x2', network: n.name, host: h2.name, ip: '10.3.0.7' },
    ]).expect(201);
    expect(res.body.items.map((i: any) => i.ip).sort()).toEqual(
      ['10.3.0.1', '10.3.0.4', '10.3.0.6', '10.3.0.8', '10.3.0.2', '10.3.0.7'].sort(),
    );
    expect(await freeRanges(n.id)).toEqual([['10.3.0.9', '10.3.0.253']]);
    await expectConsistent(n);
  });

  it('a failed request leaves no trace in the ranges (rollback, savepoint of a batch)', async () => {
    const n = await t.newNetwork('bridge', '10.4.0.0/16');
    await t.newInstance(n.name, h1.name, { name: 'al-taken' });
    const before = await freeRanges(n.id);
    // allocated 500 addresses, then failed on a name
    await bulk(n.name, h1.name, 500, [{ name: 'al-taken', network: n.name, host: h1.name }]).expect(
      409,
    );
    expect(await freeRanges(n.id)).toEqual(before);
    // failures and successes mixed in batches (group commit: a savepoint per request)
    const res = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2
          ? bulk(n.name, h2.name, 10, [{ name: 'al-taken', network: n.name, host: h2.name }])
          : t.post('/instances', { name: `al-sp-${i}`, network: n.name, host: h2.name }),
      ),
    );
    expect(res.map((r) => r.status)).toEqual(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? 409 : 201)),
    );
    const ips = res.filter((r) => r.status === 201).map((r) => r.body.ip);
    expect(ips.sort((a, b) => ipToInt(a) - ipToInt(b))).toEqual(range('10.4.0.3', 20));
    await expectConsistent(n);
  });
});

describe('block-based networks', () => {
  it('claims blocks lowest first, in single and bulk creates, and releases them', async () => {
    const n = await t.newNetwork('routed', '10.64.0.0/10', { blockPrefixLen: 26 });
    const a = await t.newInstance(n.name, h1.name);
    const b = await t.newInstance(n.name, h2.name);
    expect([a.ip, b.ip]).toEqual(['10.64.0.2', '10.64.0.66']);
    // 1,000 for h1: 60 more in its block, then 16 new blocks (61 addresses each)
    const res = await bulk(n.name, h1.name, 1000).expect(201);
    const ips = ipsOf(res);
    expect(new Set(ips).size).toBe(1000);
    expect(ips.slice(0, 60)).toEqual(range('10.64.0.3', 60));
    const blocks = await sql<{ cidr: string; host_id: string }>(
      t.databaseUrl,
      'SELECT b.cidr::text, b.host_id FROM host_blocks b WHERE b.network_id = $1 ORDER BY b.cidr',
      [n.id],
    );
    expect(blocks).toHaveLength(18);
    expect(blocks.filter((x) => x.host_id === h1.id)).toHaveLength(17);
    expect(blocks[0]).toEqual({ cidr: '10.64.0.0/26', host_id: h1.id });
    expect(blocks[1]).toEqual({ cidr: '10.64.0.64/26', host_id: h2.id });
    expect(blocks[2]).toEqual({ cidr: '10.64.0.128/26', host_id: h1.id });
    for (const ip of ips) {
      const q = ipToInt(ip) % 64;
      expect(q).toBeGreaterThanOrEqual(2);
      expect(q).toBeLessThanOrEqual(62);
    }
    await expectConsistent(n);
    // h2's block goes back when its last instance goes, and is the next one claimed
    await t.del(`/instances/${b.name}`).expect(200);
    expect(
      await sql(t.databaseUrl, 'SELECT 1 FROM host_blocks WHERE cidr = $1', ['10.64.0.64/26']),
    ).toEqual([]);
    await expectConsistent(n);
    expect((await t.newInstance(n.name, h2.name)).ip).toBe('10.64.0.66');
    // an explicit address claims its block; another host's block is a 409
    expect((await t.newInstance(n.name, h2.name, { ip: '10.127.255.200' })).ip).toBe(
      '10.127.255.200',
    );
    const steal = await t.post('/instances', {
      name: 'al-steal',
      network: n.name,
      host: h1.name,
      ip: '10.127.255.201',
    });
    expect(steal.status).toBe(409);
    expect(steal.body.message).toContain('another host');
    expect((await t.newInstance(n.name, h2.name)).ip).toBe('10.64.0.67');
    await expectConsistent(n);
  });

  it('a /30 network of /30 blocks has one address; blocks run out with 409', async () => {
    const n = await t.newNetwork('overlay', '10.5.0.0/30', { encapsulation: 'gre' });
    expect(n.blockPrefixLen).toBe(30);
    expect((await t.newInstance(n.name, h1.name)).ip).toBe('10.5.0.2');
    const ex = await t.post('/instances', { name: 'al-nob', network: n.name, host: h1.name });
    expect(ex.status).toBe(409);
    expect(ex.body.message).toContain('exhausted');
    const m = await t.newNetwork('overlay', '10.5.0.8/29', {
      encapsulation: 'ipip',
      blockPrefixLen: 30,
    });
    expect((await bulk(m.name, h1.name, 3).expect(409)).body.message).toContain('exhausted');
    const two = ipsOf(await bulk(m.name, h1.name, 2).expect(201));
    expect(two).toEqual(['10.5.0.10', '10.5.0.14']);
    const first = (await t.get(`/instances?network=${m.name}`)).body.items.find(
      (i: any) => i.ip === '10.5.0.10',
    );
    await t.del(`/instances/${first.name}`).expect(200);
    await expectConsistent(m);
    expect((await t.newInstance(m.name, h2.name)).ip).toBe('10.5.0.10');
  });
});

describe('parallel creates into one large network', () => {
  it('never hand out an address twice, and stay lowest first', async () => {
    const n = await t.newNetwork('overlay', '10.128.0.0/9');
    const res = await Promise.all([
      ...Array.from({ length: 60 }, (_, i) =>
        t.post('/instances', { name: `al-par-${i}`, network: n.name, host: i % 2 ? h1.id : h2.id }),
      ),
      ...Array.from({ length: 4 }, () => bulk(n.name, h1.name, 100)),
    ]);
    for (const r of res) expect(r.status).toBe(201);
    const ips = res.flatMap((r) => (r.body.items ?? [r.body]).map((i: any) => i.ip));
    expect(ips).toHaveLength(460);
    expect(ips.sort((a, b) => ipToInt(a) - ipToInt(b))).toEqual(range('10.128.0.2', 460));
    await expectConsistent(n);
  });
});

describe('accepted network sizes', () => {
  it('/8 to /30; larger or smaller networks are a 400 naming cidr', async () => {
    for (const [model, cidr] of [
      ['bridge', '10.0.0.0/7'],
      ['bridge', '100.0.0.0/6'],
      ['routed', '12.0.0.0/7'],
      ['bridge', '10.9.0.0/31'],
      ['overlay', '10.9.0.1/32'],
      ['routed', '10.9.0.0/31'],
    ]) {
      const res = await t.post('/networks', { name: 'al-size', model, cidr });
      expect({ cidr, status: res.status, fields: fields(res) }).toEqual({
        cidr,
        status: 400,
        fields: ['cidr'],
      });
    }
    const res = await t.post('/networks', {
      name: 'al-size',
      model: 'bridge',
      cidr: '10.9.0.0/31',
    });
    expect(res.body.details[0].errors.join(' ')).toContain('/8 to /30');
    await t.post('/networks', { name: 'al-big', model: 'routed', cidr: '11.0.0.0/8' }).expect(201);
  });
});

describe('pools', () => {
  let tp: TestController;
  beforeAll(async () => {
    tp = await startController({
      env: { LATTICE_VLAN_POOL: '100-102', LATTICE_VNI_POOL: '5000-5001' },
    });
  });
  afterAll(() => tp?.close());

  const net = (name: string, model: string, extra: object = {}) =>
    tp.post('/networks', { name, model, cidr: '10.10.0.0/24', ...extra });

  it('VLAN ids: lowest first, exhausted, explicit inside and outside the range, reused', async () => {
    expect((await net('v-a', 'vlan').expect(201)).body.vlanId).toBe(100);
    expect((await net('v-b', 'vlan', { vlanId: 101 }).expect(201)).body.vlanId).toBe(101);
    expect((await net('v-x', 'vlan', { vlanId: 3000 }).expect(201)).body.vlanId).toBe(3000);
    expect((await net('v-c', 'fabric', { transport: 'vlan' }).expect(201)).body.vlanId).toBe(102);
    const ex = await net('v-d', 'vlan').expect(409);
    expect(ex.body.message).toContain('exhausted');
    expect((await net('v-d', 'vlan', { vlanId: 101 }).expect(409)).body.message).toContain(
      'already used',
    );
    expect((await net('v-d', 'vlan', { vlanId: 3000 })).status).toBe(409);
    expect((await tp.get('/pools').expect(200)).body.vlan).toMatchObject({
      used: 3,
      free: 0,
      usedOutsideRange: 1,
    });
    await tp.del('/networks/v-b').expect(200);
    await tp.del('/networks/v-x').expect(200);
    expect((await net('v-d', 'vlan').expect(201)).body.vlanId).toBe(101);
    await tp.del('/networks/v-a').expect(200);
    await tp.del('/networks/v-c').expect(200);
    expect(
      await sql(tp.databaseUrl, `SELECT lo::int, hi::int FROM free_ids WHERE pool = 'vlan'`),
    ).toEqual([
      { lo: 100, hi: 100 },
      { lo: 102, hi: 102 },
    ]);
  });

  it('VNIs: exhausted and reused; parallel creates take distinct ones', async () => {
    const res = await Promise.all(Array.from({ length: 4 }, (_, i) => net(`x-${i}`, 'overlay')));
    expect(res.map((r) => r.status).sort()).toEqual([201, 201, 409, 409]);
    const made = res.filter((r) => r.status === 201).map((r) => r.body);
    expect(made.map((b) => b.vni).sort()).toEqual([5000, 5001]);
    await tp.del(`/networks/${made.find((b) => b.vni === 5000).name}`).expect(200);
    expect((await net('x-again', 'fabric').expect(201)).body.vni).toBe(5000);
    expect((await net('x-full', 'fabric')).status).toBe(409);
  });

  it('a changed range at restart rebuilds the free ids around those in use', async () => {
    const { databaseUrl } = tp;
    await tp.close();
    tp = await startController({
      databaseUrl,
      env: { LATTICE_VLAN_POOL: '101-105', LATTICE_VNI_POOL: '5000-5001' },
    });
    // 101 is in use (v-d); 100 is now outside the range
    const got = [];
    for (let i = 0; i < 4; i++) got.push((await net(`r-${i}`, 'vlan').expect(201)).body.vlanId);
    expect(got).toEqual([102, 103, 104, 105]);
    await net('r-x', 'vlan').expect(409);
  });
});

describe('migration of existing data', () => {
  it('fills the ranges from the rows in use', async () => {
    const tm = await startController();
    const h = await tm.newHost();
    const flat = await tm.newNetwork('bridge', '10.6.0.0/24');
    const pods = await tm.newNetwork('routed', '10.7.0.0/16', { blockPrefixLen: 28 });
    await tm.newNetwork('overlay', '10.8.0.0/24'); // VNI 10000
    for (const ip of ['10.6.0.2', '10.6.0.3', '10.6.0.9'])
      await tm.newInstance(flat.name, h.name, { ip });
    for (const ip of ['10.7.0.2', '10.7.0.5', '10.7.0.40'])
      await tm.newInstance(pods.name, h.name, { ip });
    const { databaseUrl } = tm;
    const snapshot = async () => ({
      addresses: await sql(databaseUrl, 'SELECT * FROM free_addresses ORDER BY network_id, hi'),
      blocks: await sql(databaseUrl, 'SELECT * FROM free_blocks ORDER BY network_id, hi'),
      ids: await sql(databaseUrl, 'SELECT * FROM free_ids ORDER BY pool, hi'),
    });
    const kept = await snapshot();
    await tm.close();
    // as if the database predated the migration
    await sql(
      databaseUrl,
      `DROP TABLE free_addresses, free_blocks, free_ids;
       DELETE FROM migrations WHERE name = 'AllocationRanges1764500000000'`,
    );
    const again = await startController({ databaseUrl });
    try {
      expect(await snapshot()).toEqual(kept);
      expect((await again.newInstance(flat.name, h.name)).ip).toBe('10.6.0.4');
      expect((await again.newInstance(pods.name, h.name)).ip).toBe('10.7.0.3');
      expect((await again.newNetwork('fabric', '10.9.0.0/24')).vni).toBe(10001);
    } finally {
      await again.close();
    }
  });
});

describe('free ranges against a model', () => {
  it('random takes, explicit takes and gives keep the ranges equal to the free set', async () => {
    const n = await t.newNetwork('routed', '10.200.0.0/24', { blockPrefixLen: 30 });
    const c = new pg.Client({ connectionString: t.databaseUrl });
    await c.connect();
    const tx = {
      query: async (text: string, params: unknown[] = []) => (await c.query(text, params)).rows,
    } as unknown as Tx;
    const space: Space = {
      table: 'free_blocks',
      cols: ['network_id'],
      types: ['uuid'],
      key: [n.id],
    };
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('lowest' as const),
        n: fc.integer({ min: 1, max: 8 }),
        ex: fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { maxLength: 4 }),
      }),
      fc.record({
        kind: fc.constant('take' as const),
        xs: fc.uniqueArray(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 5 }),
      }),
      fc.record({ kind: fc.constant('give' as const), x: fc.integer({ min: 0, max: 40 }) }),
    );
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
          await c.query('BEGIN');
          try {
            await c.query('DELETE FROM free_blocks WHERE network_id = $1', [n.id]);
            await c.query('INSERT INTO free_blocks VALUES ($1, 0, 31)', [n.id]);
            const free = new Set(Array.from({ length: 32 }, (_, i) => i));
            for (const o of ops) {
              if (o.kind === 'lowest') {
                const want = [...free]
                  .filter((x) => !o.ex.includes(x))
                  .sort((a, b) => a - b)
                  .slice(0, o.n);
                expect(await takeLowest(tx, space, o.n, o.ex)).toEqual(want);
                for (const x of want) free.delete(x);
              } else if (o.kind === 'take') {
                const want = o.xs.filter((x) => free.has(x)).sort((a, b) => a - b);
                expect(await take(tx, space, o.xs)).toEqual(want);
                for (const x of want) free.delete(x);
              } else {
                const r = await give(tx, space, o.x);
                free.add(o.x);
                expect(free.has(r.lo) && free.has(r.hi) && r.lo <= o.x && o.x <= r.hi).toBe(true);
                expect(free.has(r.lo - 1) || free.has(r.hi + 1)).toBe(false);
              }
              // the rows are the free set as maximal disjoint ranges
              const rows = (
                await c.query(
                  'SELECT lo::int, hi::int FROM free_blocks WHERE network_id = $1 ORDER BY hi',
                  [n.id],
                )
              ).rows as { lo: number; hi: number }[];
              const sorted = [...free].sort((a, b) => a - b);
              const expected: { lo: number; hi: number }[] = [];
              for (const x of sorted) {
                const last = expected[expected.length - 1];
                if (last && last.hi === x - 1) last.hi = x;
                else expected.push({ lo: x, hi: x });
              }
              expect(rows).toEqual(expected);
            }
          } finally {
            await c.query('ROLLBACK');
          }
        }),
        { numRuns: 60 },
      );
    } finally {
      await c.end();
    }
  });
});
