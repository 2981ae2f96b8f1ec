import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { startController, sql, type TestController } from '../support/controller.js';

/** Real parallel HTTP requests: all are sent before any is awaited. */
function parallel(n: number, make: (i: number) => PromiseLike<Response>): Promise<Response[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => make(i)));
}

const ipToInt = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const intToIp = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

/** Every response is a 201 or a 409 that says the network is exhausted. */
function expectCreatedOrExhausted(responses: Response[]) {
  for (const r of responses) {
    if (r.status === 201) continue;
    expect({ status: r.status, body: r.body }).toMatchObject({
      status: 409,
      body: { statusCode: 409, error: 'Conflict', message: expect.stringContaining('exhausted') },
    });
  }
}

function duplicates(values: string[]): string[] {
  const seen = new Set<string>();
  return values.filter((v) => (seen.has(v) ? true : (seen.add(v), false)));
}

/** The database's own view: no (network, ip) and no MAC held twice. */
async function expectNoDuplicatesInDb(t: TestController) {
  const ips = await sql(
    t.databaseUrl,
    'SELECT network_id, host(ip) AS ip, count(*) FROM instances GROUP BY network_id, ip HAVING count(*) > 1',
  );
  expect(ips).toEqual([]);
  const macs = await sql(
    t.databaseUrl,
    'SELECT mac::text, count(*) FROM instances GROUP BY mac HAVING count(*) > 1',
  );
  expect(macs).toEqual([]);
}

/** All instances of a network through the API (paginated). */
async function listInstances(t: TestController, network: string) {
  const items: { name: string; ip: string; mac: string; host: string }[] = [];
  let cursor: string | null = null;
  do {
    const res: Response = await t
      .get(`/instances?network=${network}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`)
      .expect(200);
    items.push(...res.body.items);
    cursor = res.body.nextCursor;
  } while (cursor);
  return items;
}

async function instancesInDb(t: TestController, networkId: string) {
  return sql<{ name: string; ip: string; mac: string; host_id: string; revision: string }>(
    t.databaseUrl,
    'SELECT name, host(ip) AS ip, mac::text AS mac, host_id, revision FROM instances WHERE network_id = $1',
    [networkId],
  );
}

/** The revision log holds a row for each of these revisions. */
async function expectRevisionsLogged(t: TestController, revisions: number[]) {
  const rows = await sql<{ revision: string }>(
    t.databaseUrl,
    'SELECT revision FROM revisions WHERE revision = ANY($1)',
    [revisions],
  );
  expect(rows.map((r) => Number(r.revision)).sort((a, b) => a - b)).toEqual(
    [...new Set(revisions)].sort((a, b) => a - b),
  );
}

/**
 * Checks a shared-subnet network after a burst of creates: the created instances are
 * exactly what the API and the database hold, with distinct, valid addresses.
 */
async function expectConsistent(
  t: TestController,
  net: { id: string; name: string; cidr: string; gateway: string },
  created: Response[],
) {
  const [base, prefix] = net.cidr.split('/');
  const lo = ipToInt(base);
  const hi = lo + 2 ** (32 - Number(prefix)) - 1;
  const ips = created.map((r) => r.body.ip as string);
  const macs = created.map((r) => r.body.mac as string);
  expect(duplicates(ips)).toEqual([]);
  expect(duplicates(macs)).toEqual([]);
  for (const ip of ips) {
    const n = ipToInt(ip);
    expect(n).toBeGreaterThan(lo);
    expect(n).toBeLessThan(hi);
    expect(ip).not.toBe(net.gateway);
  }
  for (const mac of macs) {
    expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(parseInt(mac.slice(0, 2), 16) & 1).toBe(0); // unicast
  }
  // Concurrent creates may be committed together (group commit): each answers with the
  // revision at which it became visible, which the log holds and the row carries.
  const revisions = created.map((r) => r.body.revision as number);
  await expectRevisionsLogged(t, revisions);

  const byName = new Map(created.map((r) => [r.body.name as string, r.body]));
  const listed = await listInstances(t, net.name);
  expect(listed).toHaveLength(created.length);
  for (const i of listed) {
    expect(byName.get(i.name)).toMatchObject({ ip: i.ip, mac: i.mac, host: i.host });
  }
  const rows = await instancesInDb(t, net.id);
  expect(rows).toHaveLength(created.length);
  for (const r of rows) {
    expect(byName.get(r.name)).toMatchObject({
      ip: r.ip,
      mac: r.mac,
      revision: Number(r.revision),
    });
  }
  await expectNoDuplicatesInDb(t);
}

/** One controller for the instance tests (each uses networks of its own), four hosts. */
let t: TestController;
let hosts: { id: string; name: string }[];
beforeAll(async () => {
  t = await startController();
  hosts = [];
  for (let i = 0; i < 4; i++) hosts.push(await t.newHost());
});
afterAll(() => t?.close());

describe('parallel instance creates into one network', () => {
  it('200 into a /24: every request gets 201 (253 usable), no duplicate IP or MAC', async () => {
    const net = await t.newNetwork('overlay', '10.1.0.0/24');
    const res = await parallel(200, (i) =>
      t.post('/instances', { name: `a-${i}`, network: net.name, host: hosts[i % 4].name }),
    );
    expectCreatedOrExhausted(res);
    const created = res.filter((r) => r.status === 201);
    expect(created).toHaveLength(200);
    for (const r of created) expect(r.body.network).toBe(net.name);
    await expectConsistent(t, net, created);
    // Each instance is on the host it was asked for.
    for (const r of created) {
      const i = Number((r.body.name as string).slice(2));
      expect(r.body.host).toBe(hosts[i % 4].name);
    }
    await t.get('/health', '').expect(200);
  });

  it('50 into a /28: exactly 13 × 201 and 37 × 409 "exhausted", no duplicates', async () => {
    const net = await t.newNetwork('vlan', '10.2.0.0/28');
    expect(net.gateway).toBe('10.2.0.1');
    const res = await parallel(50, (i) =>
      t.post('/instances', { name: `b-${i}`, network: net.id, host: hosts[i % 4].id }),
    );
    expectCreatedOrExhausted(res);
    const created = res.filter((r) => r.status === 201);
    expect(created).toHaveLength(13);
    expect(res.filter((r) => r.status === 409)).toHaveLength(37);
    await expectConsistent(t, net, created);
    // 13 distinct valid addresses of a /28 are all of its usable ones.
    const usable = Array.from({ length: 13 }, (_, k) => intToIp(ipToInt('10.2.0.2') + k));
    expect(created.map((r) => r.body.ip as string).sort()).toEqual(usable.sort());
    // The failed requests left nothing behind.
    const [{ n }] = await sql<{ n: string }>(
      t.databaseUrl,
      "SELECT count(*) AS n FROM instances WHERE name LIKE 'b-%'",
    );
    expect(Number(n)).toBe(13);
    // Full is full: one more create is refused the same way.
    const more = await t.post('/instances', {
      name: 'b-more',
      network: net.name,
      host: hosts[0].name,
    });
    expectCreatedOrExhausted([more]);
    expect(more.status).toBe(409);
  });

  it('parallel creates with explicit IPs and MACs: one winner per address', async () => {
    const net = await t.newNetwork('bridge', '10.3.0.0/24');
    // 40 requests, 8 addresses and 8 MACs, each wanted by 5 requests.
    const res = await parallel(40, (i) =>
      t.post('/instances', {
        name: `c-${i}`,
        network: net.name,
        host: hosts[i % 4].name,
        ip: `10.3.0.${10 + (i % 8)}`,
        mac: `02:00:00:00:03:${(i % 8).toString(16).padStart(2, '0')}`,
      }),
    );
    for (const r of res) {
      if (r.status !== 201) {
        expect({ status: r.status, body: r.body }).toMatchObject({
          status: 409,
          body: { statusCode: 409, error: 'Conflict' },
        });
        expect(r.body.message).toMatch(/in use/);
      }
    }
    const created = res.filter((r) => r.status === 201);
    expect(created).toHaveLength(8);
    await expectConsistent(t, net, created);
  });
});

describe('parallel creates in block-based networks', () => {
  async function expectBlocksConsistent(networkId: string, created: Response[], prefixLen: number) {
    const ips = created.map((r) => r.body.ip as string);
    expect(duplicates(ips)).toEqual([]);
    // Every instance's IP lies in a block of its own host, and is not reserved there.
    const rows = await sql<{
      name: string;
      ip: string;
      host_id: string;
      cidr: string | null;
      owner: string | null;
    }>(
      t.databaseUrl,
      `SELECT i.name, host(i.ip) AS ip, i.host_id, b.cidr::text AS cidr, b.host_id AS owner
         FROM instances i LEFT JOIN host_blocks b ON b.network_id = i.network_id AND i.ip << b.cidr
        WHERE i.network_id = $1`,
      [networkId],
    );
    expect(rows).toHaveLength(created.length);
    for (const r of rows) {
      expect(r.cidr).not.toBeNull();
      expect(r.owner).toBe(r.host_id);
      const [b, len] = r.cidr!.split('/');
      expect(Number(len)).toBe(prefixLen);
      const n = ipToInt(r.ip);
      const base = ipToInt(b);
      expect(n).toBeGreaterThan(base + 1); // not the block's network address or gateway
      expect(n).toBeLessThan(base + 2 ** (32 - prefixLen) - 1); // nor its broadcast
      const resp = created.find((x) => x.body.name === r.name)!;
      expect(resp.body).toMatchObject({ ip: r.ip, hostId: r.host_id });
    }
    // No two blocks overlap (in any network).
    expect(
      await sql(
        t.databaseUrl,
        `SELECT a.cidr::text, b.cidr::text FROM host_blocks a JOIN host_blocks b
           ON a.cidr && b.cidr AND a.cidr <> b.cidr`,
      ),
    ).toEqual([]);
    await expectNoDuplicatesInDb(t);
    return rows;
  }

  it("20 parallel creates over 4 hosts (blockPrefixLen 28): distinct IPs inside each host's block", async () => {
    const net = await t.newNetwork('routed', '10.50.0.0/24', { blockPrefixLen: 28 });
    expect(net.blockPrefixLen).toBe(28);
    const res = await parallel(20, (i) =>
      t.post('/instances', { name: `r-${i}`, network: net.name, host: hosts[i % 4].name }),
    );
    for (const r of res) expect({ status: r.status, body: r.body }).toMatchObject({ status: 201 });
    await expectBlocksConsistent(net.id, res, 28);
    // Five instances fit in one /28 (13 usable): each host claimed exactly one block.
    const blocks = await sql<{ host_id: string; n: string }>(
      t.databaseUrl,
      'SELECT host_id, count(*) AS n FROM host_blocks WHERE network_id = $1 GROUP BY host_id',
      [net.id],
    );
    expect(blocks.map((b) => b.host_id).sort()).toEqual(hosts.map((h) => h.id).sort());
    for (const b of blocks) expect(Number(b.n)).toBe(1);
  });

  it('60 parallel creates over 4 hosts need two blocks per host, still without overlap', async () => {
    const net = await t.newNetwork('overlay', '10.60.0.0/24', {
      encapsulation: 'ipip',
      blockPrefixLen: 28,
    });
    const res = await parallel(60, (i) =>
      t.post('/instances', { name: `s-${i}`, network: net.id, host: hosts[i % 4].id }),
    );
    for (const r of res) expect({ status: r.status, body: r.body }).toMatchObject({ status: 201 });
    await expectBlocksConsistent(net.id, res, 28);
    const blocks = await sql<{ host_id: string; n: string }>(
      t.databaseUrl,
      'SELECT host_id, count(*) AS n FROM host_blocks WHERE network_id = $1 GROUP BY host_id',
      [net.id],
    );
    expect(blocks).toHaveLength(4);
    for (const b of blocks) expect(Number(b.n)).toBe(2); // 15 instances > 13 per /28
  });

  it('a /26 routed network with /28 blocks runs out of blocks: 201 or 409 "exhausted"', async () => {
    // 4 blocks of 13 usable addresses, one per host, 8 hosts asking: 4 hosts get nothing.
    const more: { id: string; name: string }[] = [...hosts];
    for (let i = 0; i < 4; i++) more.push(await t.newHost());
    const net = await t.newNetwork('routed', '10.70.0.0/26', { blockPrefixLen: 28 });
    const res = await parallel(40, (i) =>
      t.post('/instances', { name: `u-${i}`, network: net.name, host: more[i % 8].name }),
    );
    expectCreatedOrExhausted(res);
    const created = res.filter((r) => r.status === 201);
    expect(created).toHaveLength(20); // 5 per host, for the 4 hosts that got a block
    await expectBlocksConsistent(net.id, created, 28);
    const owners = new Set(created.map((r) => r.body.host as string));
    expect(owners.size).toBe(4);
    for (const o of owners) {
      expect(created.filter((r) => r.body.host === o)).toHaveLength(5);
    }
  });
});

describe('parallel bulk creates', () => {
  const bulk = (prefix: string, network: string, n: number) => ({
    instances: Array.from({ length: n }, (_, i) => ({
      name: `${prefix}-${i}`,
      network,
      host: hosts[i % hosts.length].name,
    })),
  });

  it('5 parallel bulks of 100 into a /22: all succeed, no duplicates', async () => {
    const net = await t.newNetwork('overlay', '10.80.0.0/22');
    const res = await parallel(5, (k) => t.post('/instances/bulk', bulk(`f${k}`, net.name, 100)));
    for (const r of res) expect({ status: r.status, body: r.body }).toMatchObject({ status: 201 });
    for (const r of res) {
      expect(r.body.items).toHaveLength(100);
      // One bulk, one revision.
      expect(new Set(r.body.items.map((i: { revision: number }) => i.revision))).toEqual(
        new Set([r.body.revision]),
      );
    }
    // Bulks may be committed together (group commit); each is logged with its revision.
    const revisions = res.map((r) => r.body.revision as number);
    await expectRevisionsLogged(t, revisions);
    const items = res.flatMap((r) => r.body.items);
    const ips = items.map((i: { ip: string }) => i.ip);
    const macs = items.map((i: { mac: string }) => i.mac);
    expect(duplicates(ips)).toEqual([]);
    expect(duplicates(macs)).toEqual([]);
    expect(await listInstances(t, net.name)).toHaveLength(500);
    expect(await instancesInDb(t, net.id)).toHaveLength(500);
    await expectNoDuplicatesInDb(t);
  });

  it('5 parallel bulks of 100 into a /24: all or none per bulk, two fit', async () => {
    const net = await t.newNetwork('vlan', '10.90.0.0/24');
    const res = await parallel(5, (k) => t.post('/instances/bulk', bulk(`g${k}`, net.name, 100)));
    expectCreatedOrExhausted(res);
    const ok = res.filter((r) => r.status === 201);
    // 253 usable addresses: two bulks of 100 fit, a third does not.
    expect(ok).toHaveLength(2);
    const rows = await instancesInDb(t, net.id);
    expect(rows).toHaveLength(200);
    for (let k = 0; k < 5; k++) {
      const mine = rows.filter((r) => r.name.startsWith(`g${k}-`));
      expect([0, 100]).toContain(mine.length);
      expect(mine.length === 100).toBe(res[k].status === 201);
      if (res[k].status === 201) {
        // All of one bulk carry its revision.
        expect(new Set(mine.map((r) => Number(r.revision)))).toEqual(
          new Set([res[k].body.revision]),
        );
      }
    }
    const items = ok.flatMap((r) => r.body.items as { name: string; ip: string; mac: string }[]);
    expect(duplicates(items.map((i) => i.ip))).toEqual([]);
    expect(duplicates(items.map((i) => i.mac))).toEqual([]);
    const listed = await listInstances(t, net.name);
    expect(listed.map((i) => `${i.name} ${i.ip} ${i.mac}`).sort()).toEqual(
      items.map((i) => `${i.name} ${i.ip} ${i.mac}`).sort(),
    );
    await expectNoDuplicatesInDb(t);
    // The remaining 53 addresses are still free for single creates.
    const single = await t.post('/instances', {
      name: 'g-single',
      network: net.name,
      host: hosts[0].name,
    });
    expect(single.status).toBe(201);
  });
});

describe('parallel network creates and the pools', () => {
  // A controller of its own: the pools start empty.
  let tp: TestController;
  beforeAll(async () => {
    tp = await startController();
  });
  afterAll(() => tp?.close());

  it('100 overlay networks without a VNI get 100 distinct VNIs; the pool reports 100 used', async () => {
    const pools0 = (await tp.get('/pools').expect(200)).body;
    expect(pools0.vni.used).toBe(0);
    const res = await parallel(100, (i) =>
      tp.post('/networks', { name: `ov-${i}`, model: 'overlay', cidr: '10.10.0.0/24' }),
    );
    for (const r of res) expect({ status: r.status, body: r.body }).toMatchObject({ status: 201 });
    const vnis = res.map((r) => r.body.vni as number);
    expect(new Set(vnis).size).toBe(100);
    for (const v of vnis) {
      expect(Number.isInteger(v)).toBe(true);
      expect(v).toBeGreaterThanOrEqual(pools0.vni.start);
      expect(v).toBeLessThanOrEqual(pools0.vni.end);
    }
    const revisions = res.map((r) => r.body.revision as number);
    await expectRevisionsLogged(tp, revisions);
    const pools = (await tp.get('/pools').expect(200)).body;
    expect(pools.vni).toMatchObject({ used: 100, free: pools0.vni.size - 100 });
    expect(
      await sql(
        tp.databaseUrl,
        'SELECT vni, count(*) FROM networks GROUP BY vni HAVING count(*) > 1',
      ),
    ).toEqual([]);
    const rows = await sql<{ name: string; vni: number }>(
      tp.databaseUrl,
      "SELECT name, vni FROM networks WHERE name LIKE 'ov-%'",
    );
    expect(rows).toHaveLength(100);
    for (const row of rows) {
      const r = res.find((x) => x.body.name === row.name)!;
      expect(row.vni).toBe(r.body.vni);
    }
    // Explicitly asking for a VNI that the parallel creates took is a 409.
    const taken = await tp.post('/networks', {
      name: 'ov-taken',
      model: 'overlay',
      cidr: '10.10.0.0/24',
      vni: vnis[0],
    });
    expect(taken.status).toBe(409);
  });

  it('parallel VLAN networks (vlan and fabric/vlan) get distinct VLAN ids', async () => {
    const pools0 = (await tp.get('/pools').expect(200)).body;
    expect(pools0.vlan.used).toBe(0);
    const res = await parallel(60, (i) =>
      tp.post(
        '/networks',
        i % 2 === 0
          ? { name: `vl-${i}`, model: 'vlan', cidr: '10.20.0.0/24' }
          : { name: `vl-${i}`, model: 'fabric', transport: 'vlan', cidr: '10.20.0.0/24' },
      ),
    );
    for (const r of res) expect({ status: r.status, body: r.body }).toMatchObject({ status: 201 });
    const ids = res.map((r) => r.body.vlanId as number);
    expect(new Set(ids).size).toBe(60);
    for (const v of ids) {
      expect(v).toBeGreaterThanOrEqual(pools0.vlan.start);
      expect(v).toBeLessThanOrEqual(pools0.vlan.end);
    }
    for (const r of res.filter((x) => x.body.model === 'fabric')) expect(r.body.vni).toBeNull();
    const pools = (await tp.get('/pools').expect(200)).body;
    expect(pools.vlan.used).toBe(60);
    expect(pools.vni.used).toBe(100); // unchanged by VLAN networks
    expect(
      await sql(
        tp.databaseUrl,
        'SELECT vlan_id, count(*) FROM networks WHERE vlan_id IS NOT NULL GROUP BY vlan_id HAVING count(*) > 1',
      ),
    ).toEqual([]);
  });

  it('parallel creates of one name: exactly one wins, the rest get 409', async () => {
    const res = await parallel(20, () =>
      tp.post('/networks', { name: 'same-name', model: 'overlay', cidr: '10.30.0.0/24' }),
    );
    expect(res.filter((r) => r.status === 201)).toHaveLength(1);
    for (const r of res.filter((x) => x.status !== 201)) {
      expect({ status: r.status, body: r.body }).toMatchObject({
        status: 409,
        body: { statusCode: 409, error: 'Conflict', message: expect.stringContaining('name') },
      });
    }
    const rows = await sql(tp.databaseUrl, "SELECT vni FROM networks WHERE name = 'same-name'");
    expect(rows).toHaveLength(1);
    expect((await tp.get('/pools').expect(200)).body.vni.used).toBe(101);
  });
});

describe('a burst larger than the database connection pool', () => {
  it('400 parallel creates into a /22 all get 201; an error means nothing was written', async () => {
    // Nothing is exhausted here (1021 usable addresses): waiting for the network's lock
    // must not turn into an error, least of all "the database is unreachable".
    const net = await t.newNetwork('overlay', '10.5.0.0/22');
    const res = await parallel(400, (i) =>
      t.post('/instances', { name: `p-${i}`, network: net.name, host: hosts[i % 4].name }),
    );
    const outcomes: Record<string, number> = {};
    for (const r of res) {
      const k = r.status === 201 ? '201' : `${r.status} ${r.body.message}`;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
    await t.get('/health', '').expect(200);
    await expectNoDuplicatesInDb(t);
    // A request answered with an error must not have created its instance.
    const failedNames = new Set(res.flatMap((r, i) => (r.status === 201 ? [] : [`p-${i}`])));
    const committedAnyway = (await instancesInDb(t, net.id)).filter((r) => failedNames.has(r.name));
    expect({ outcomes, committedAnyway: committedAnyway.length }).toEqual({
      outcomes: { '201': 400 },
      committedAnyway: 0,
    });
    await expectConsistent(
      t,
      net,
      res.filter((r) => r.status === 201),
    );
  });
});
