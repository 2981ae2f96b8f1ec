import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { startController, sql, type TestController } from '../support/controller.js';

let t: TestController;
beforeAll(async () => {
  t = await startController();
});
afterAll(() => t?.close());

/** Distinct /24s per test so that nothing overlaps by accident. */
let block = 0;
const nextCidr = () => `10.${100 + Math.floor(++block / 250)}.${block % 250}.0/24`;

async function health(): Promise<number> {
  return (await t.get('/health', '').expect(200)).body.revision as number;
}

/** What the database holds about a router's attachments and the networks' flags. */
async function attachedInDb(routerName: string): Promise<string[]> {
  const rows = await sql<{ name: string }>(
    t.databaseUrl,
    `SELECT n.name FROM router_networks rn JOIN routers r ON r.id = rn.router_id
       JOIN networks n ON n.id = rn.network_id WHERE r.name = $1 ORDER BY n.name`,
    [routerName],
  );
  return rows.map((r) => r.name);
}

async function routableInDb(networkName: string): Promise<boolean> {
  const [row] = await sql<{ routable: boolean }>(
    t.databaseUrl,
    'SELECT routable FROM networks WHERE name = $1',
    [networkName],
  );
  return row.routable;
}

async function routableViaApi(networkName: string): Promise<boolean> {
  return (await t.get(`/networks/${networkName}`).expect(200)).body.routable as boolean;
}

describe('routers', () => {
  it('creates a router with networks named by name and by id, and reads it back', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    const b = await t.newNetwork('overlay', nextCidr());
    expect(a.routable).toBe(false);
    expect(b.routable).toBe(false);
    const before = await health();
    const res = await t
      .post('/routers', { name: 'r-create', networks: [a.name, b.id] })
      .expect(201);
    expect(res.body).toMatchObject({ name: 'r-create' });
    expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect([...res.body.networks].sort()).toEqual([a.name, b.name].sort());
    expect([...res.body.networkIds].sort()).toEqual([a.id, b.id].sort());
    expect(res.body.revision).toBeGreaterThan(before);
    expect(await health()).toBe(res.body.revision);

    const byName = await t.get('/routers/r-create').expect(200);
    expect(byName.body.id).toBe(res.body.id);
    expect([...byName.body.networks].sort()).toEqual([a.name, b.name].sort());
    const byId = await t.get(`/routers/${res.body.id}`).expect(200);
    expect(byId.body.name).toBe('r-create');
    expect(byId.body.revision).toBe(res.body.revision);

    // Attaching made both networks routable (API and database agree).
    expect(await routableViaApi(a.name)).toBe(true);
    expect(await routableViaApi(b.name)).toBe(true);
    expect(await routableInDb(a.name)).toBe(true);
    expect(await attachedInDb('r-create')).toEqual([a.name, b.name].sort());
  });

  it('creates a router without networks', async () => {
    const res = await t.post('/routers', { name: 'r-empty' }).expect(201);
    expect(res.body.networks).toEqual([]);
    expect(res.body.networkIds).toEqual([]);
    expect(await attachedInDb('r-empty')).toEqual([]);
  });

  it('attaches a network named twice (by name and by id) once', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    const res = await t.post('/routers', { name: 'r-twice', networks: [a.name, a.id] });
    expect({ status: res.status, body: res.body }).toMatchObject({
      status: 201,
      body: { networks: [a.name] },
    });
    expect(await attachedInDb('r-twice')).toEqual([a.name]);
    const patched = await t.patch('/routers/r-twice', { networks: [a.id, a.name] });
    expect({ status: patched.status, body: patched.body }).toMatchObject({
      status: 200,
      body: { networks: [a.name] },
    });
  });

  it('lists routers in pages with a cursor', async () => {
    for (let i = 0; i < 5; i++) await t.post('/routers', { name: `page-r${i}` }).expect(201);
    const names: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Response = await t
        .get(`/routers?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        .expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      expect(res.body).toHaveProperty('nextCursor');
      names.push(...res.body.items.map((r: { name: string }) => r.name));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    const all = (await t.get('/routers?limit=1000').expect(200)).body;
    expect(all.nextCursor).toBeNull();
    const allNames = all.items.map((r: { name: string }) => r.name);
    expect(names).toEqual(allNames);
    expect(new Set(names).size).toBe(names.length);
    expect([...names].sort()).toEqual(names);
    const [{ n }] = await sql<{ n: string }>(t.databaseUrl, 'SELECT count(*) AS n FROM routers');
    expect(allNames.length).toBe(Number(n));
    expect(pages).toBe(Math.ceil(allNames.length / 2));
    for (const p of ['page-r0', 'page-r1', 'page-r2', 'page-r3', 'page-r4'])
      expect(names).toContain(p);
    await t.get('/routers?limit=0').expect(400);
    await t.get('/routers?cursor=garbage').expect(400);
  });

  it('replaces the attached networks with PATCH networks', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    const b = await t.newNetwork('vlan', nextCidr());
    const c = await t.newNetwork('overlay', nextCidr());
    const created = await t
      .post('/routers', { name: 'r-replace', networks: [a.name, b.name] })
      .expect(201);
    const res = await t.patch('/routers/r-replace', { networks: [b.id, c.name] }).expect(200);
    expect([...res.body.networks].sort()).toEqual([b.name, c.name].sort());
    expect(res.body.revision).toBeGreaterThan(created.body.revision);
    expect(await attachedInDb('r-replace')).toEqual([b.name, c.name].sort());
    // a lost its only router: a shared-subnet network is no longer routable.
    expect(await routableViaApi(a.name)).toBe(false);
    expect(await routableInDb(a.name)).toBe(false);
    expect(await routableViaApi(b.name)).toBe(true);
    expect(await routableViaApi(c.name)).toBe(true);
    // An empty set detaches everything.
    const emptied = await t.patch('/routers/r-replace', { networks: [] }).expect(200);
    expect(emptied.body.networks).toEqual([]);
    expect(emptied.body.revision).toBeGreaterThan(res.body.revision);
    expect(await attachedInDb('r-replace')).toEqual([]);
    for (const n of [a, b, c]) expect(await routableViaApi(n.name)).toBe(false);
  });

  it('attaches and detaches with PATCH attach/detach', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    const b = await t.newNetwork('bridge', nextCidr());
    const c = await t.newNetwork('fabric', nextCidr());
    const r = await t.post('/routers', { name: 'r-ad', networks: [a.name] }).expect(201);
    const attached = await t.patch('/routers/r-ad', { attach: [b.name, c.id] }).expect(200);
    expect([...attached.body.networks].sort()).toEqual([a.name, b.name, c.name].sort());
    expect(attached.body.revision).toBeGreaterThan(r.body.revision);
    expect(await routableViaApi(c.name)).toBe(true);
    const both = await t.patch('/routers/r-ad', { attach: [], detach: [a.id, b.name] }).expect(200);
    expect(both.body.networks).toEqual([c.name]);
    expect(both.body.revision).toBeGreaterThan(attached.body.revision);
    expect(await attachedInDb('r-ad')).toEqual([c.name]);
    expect(await routableViaApi(a.name)).toBe(false);
    expect(await routableViaApi(b.name)).toBe(false);
    expect(await routableInDb(b.name)).toBe(false);
    expect(await routableViaApi(c.name)).toBe(true);
    // Re-attaching an attached network is a no-op for the set.
    const again = await t.patch('/routers/r-ad', { attach: [c.name] }).expect(200);
    expect(again.body.networks).toEqual([c.name]);
  });

  it('refuses networks together with attach/detach (400) and changes nothing', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    const b = await t.newNetwork('bridge', nextCidr());
    await t.post('/routers', { name: 'r-both', networks: [a.name] }).expect(201);
    const rev = await health();
    for (const body of [
      { networks: [b.name], attach: [b.name] },
      { networks: [b.name], detach: [a.name] },
    ]) {
      const res = await t.patch('/routers/r-both', body).expect(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain('networks');
    }
    expect(await attachedInDb('r-both')).toEqual([a.name]);
    expect(await routableViaApi(b.name)).toBe(false);
    expect(await health()).toBe(rev);
  });

  it('keeps a network routable while another router still holds it', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    await t.post('/routers', { name: 'r-two-1', networks: [a.name] }).expect(201);
    await t.post('/routers', { name: 'r-two-2', networks: [a.name] }).expect(201);
    await t.patch('/routers/r-two-1', { detach: [a.name] }).expect(200);
    expect(await routableViaApi(a.name)).toBe(true);
    await t.del('/routers/r-two-2').expect(200);
    expect(await routableViaApi(a.name)).toBe(false);
    expect(await routableInDb(a.name)).toBe(false);
  });

  it('a block-based network stays routable after detaching', async () => {
    const p = await t.newNetwork('routed', '10.90.0.0/24');
    expect(p.routable).toBe(true);
    await t.post('/routers', { name: 'r-blocks', networks: [p.name] }).expect(201);
    await t.patch('/routers/r-blocks', { detach: [p.name] }).expect(200);
    expect(await routableViaApi(p.name)).toBe(true);
  });

  it('deletes a router, detaching its networks', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    const r = await t.post('/routers', { name: 'r-del', networks: [a.name] }).expect(201);
    const del = await t.del(`/routers/${r.body.id}`).expect(200);
    expect(del.body).toMatchObject({ id: r.body.id, name: 'r-del', deleted: true });
    expect(del.body.revision).toBeGreaterThan(r.body.revision);
    expect(await health()).toBe(del.body.revision);
    await t.get('/routers/r-del').expect(404);
    await t.del('/routers/r-del').expect(404);
    await t.patch('/routers/r-del', { attach: [a.name] }).expect(404);
    expect(await routableViaApi(a.name)).toBe(false);
    const rows = await sql(t.databaseUrl, 'SELECT 1 FROM router_networks WHERE router_id = $1', [
      r.body.id,
    ]);
    expect(rows).toHaveLength(0);
    // The network can now be deleted.
    await t.del(`/networks/${a.name}`).expect(200);
  });

  it('answers 404 for an unknown router or network and changes nothing', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    await t.post('/routers', { name: 'r-404', networks: [a.name] }).expect(201);
    const rev = await health();
    const r1 = await t.get('/routers/no-such-router').expect(404);
    expect(r1.body).toMatchObject({ statusCode: 404, error: 'Not Found' });
    expect(r1.body.message).toContain('no-such-router');
    await t.get('/routers/00000000-0000-4000-8000-000000000000').expect(404);
    await t.del('/routers/no-such-router').expect(404);
    await t.patch('/routers/no-such-router', { attach: [a.name] }).expect(404);

    const unknownNet = await t
      .post('/routers', { name: 'r-404b', networks: [a.name, 'no-such-net'] })
      .expect(404);
    expect(unknownNet.body.message).toContain('no-such-net');
    await t.get('/routers/r-404b').expect(404);
    await t
      .post('/routers', { name: 'r-404c', networks: ['00000000-0000-4000-8000-000000000000'] })
      .expect(404);
    await t.patch('/routers/r-404', { attach: ['no-such-net'] }).expect(404);
    await t.patch('/routers/r-404', { detach: ['no-such-net'] }).expect(404);
    await t.patch('/routers/r-404', { networks: ['no-such-net'] }).expect(404);
    expect(await attachedInDb('r-404')).toEqual([a.name]);
    expect(await health()).toBe(rev);
  });

  it('refuses a duplicate router name with 409', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    await t.post('/routers', { name: 'r-dup' }).expect(201);
    const rev = await health();
    const res = await t.post('/routers', { name: 'r-dup', networks: [a.name] }).expect(409);
    expect(res.body).toMatchObject({ statusCode: 409, error: 'Conflict' });
    expect(res.body.message).toContain('name');
    expect(await routableViaApi(a.name)).toBe(false);
    expect(await health()).toBe(rev);
    const [{ n }] = await sql<{ n: string }>(
      t.databaseUrl,
      "SELECT count(*) AS n FROM routers WHERE name = 'r-dup'",
    );
    expect(Number(n)).toBe(1);
  });

  it('refuses invalid router input with 400', async () => {
    const res = await t
      .post('/routers', { name: 'Bad_Name', networks: 'blue', extra: 1 })
      .expect(400);
    const fields = res.body.details.map((d: { field: string }) => d.field).sort();
    expect(fields).toEqual(['extra', 'name', 'networks']);
    await t.post('/routers', { name: 'r-bad', networks: [1, 2] }).expect(400);
    await t.patch('/routers/r-dup', { attach: 'x' }).expect(400);
    await t.patch('/routers/r-dup', { rename: 'x' }).expect(400);
  });

  it('refuses to attach a network overlapping another attached network (409), changing nothing', async () => {
    const a = await t.newNetwork('bridge', '10.60.0.0/24');
    const b = await t.newNetwork('bridge', '10.60.0.0/25'); // inside a
    const c = await t.newNetwork('overlay', '10.60.0.0/24'); // same subnet: fine for isolated L2
    const d = await t.newNetwork('bridge', '10.61.0.0/24');
    const e = await t.newNetwork('bridge', '10.61.0.128/25'); // inside d
    await t.post('/routers', { name: 'r-ov', networks: [a.name] }).expect(201);
    const rev = await health();

    const byAttach = await t.patch('/routers/r-ov', { attach: [b.name] }).expect(409);
    expect(byAttach.body).toMatchObject({ statusCode: 409, error: 'Conflict' });
    expect(byAttach.body.message).toMatch(/overlap/i);
    await t.patch('/routers/r-ov', { networks: [a.name, c.name] }).expect(409);

    // Another router cannot take an overlapping network either.
    const other = await t.post('/routers', { name: 'r-ov-2', networks: [c.name] }).expect(409);
    expect(other.body.message).toMatch(/overlap/i);
    await t.get('/routers/r-ov-2').expect(404);
    // Nor can one router be created with two networks overlapping each other.
    const pair = await t
      .post('/routers', { name: 'r-ov-3', networks: [d.name, e.name] })
      .expect(409);
    expect(pair.body.message).toMatch(/overlap/i);
    await t.get('/routers/r-ov-3').expect(404);
    for (const n of [d, e]) expect(await routableInDb(n.name)).toBe(false);

    expect(await attachedInDb('r-ov')).toEqual([a.name]);
    expect((await t.get('/routers/r-ov').expect(200)).body.networks).toEqual([a.name]);
    expect(await routableViaApi(a.name)).toBe(true);
    for (const n of [b, c]) {
      expect(await routableViaApi(n.name)).toBe(false);
      expect(await routableInDb(n.name)).toBe(false);
    }
    expect(await health()).toBe(rev);
    const [{ n }] = await sql<{ n: string }>(
      t.databaseUrl,
      "SELECT count(*) AS n FROM routers WHERE name LIKE 'r-ov-%'",
    );
    expect(Number(n)).toBe(0);

    // Once a is detached, the overlapping b may take its place.
    const swapped = await t.patch('/routers/r-ov', { detach: [a.name] }).expect(200);
    expect(swapped.body.networks).toEqual([]);
    await t.patch('/routers/r-ov', { attach: [b.name] }).expect(200);
    expect(await routableViaApi(b.name)).toBe(true);
    expect(await routableViaApi(a.name)).toBe(false);
  });

  it('refuses to attach a network overlapping a block-based routed network (409)', async () => {
    const pods = await t.newNetwork('routed', '10.70.0.0/16');
    expect(pods.routable).toBe(true);
    const inner = await t.newNetwork('bridge', '10.70.5.0/24');
    const outer = await t.newNetwork('vlan', '10.0.0.0/8');
    const fine = await t.newNetwork('bridge', '10.71.0.0/24');
    await t.post('/routers', { name: 'r-blk', networks: [fine.name] }).expect(201);
    const rev = await health();
    for (const n of [inner, outer]) {
      const res = await t.patch('/routers/r-blk', { attach: [n.name] }).expect(409);
      expect(res.body.message).toMatch(/overlap/i);
      expect(await routableViaApi(n.name)).toBe(false);
      expect(await routableInDb(n.name)).toBe(false);
    }
    await t.post('/routers', { name: 'r-blk-2', networks: [inner.name] }).expect(409);
    expect(await attachedInDb('r-blk')).toEqual([fine.name]);
    expect(await routableViaApi(pods.name)).toBe(true);
    expect(await routableViaApi(fine.name)).toBe(true);
    expect(await health()).toBe(rev);
    // And a routed network cannot be created over an attached one.
    const res = await t
      .post('/networks', { name: 'pods-over', model: 'routed', cidr: '10.71.0.0/16' })
      .expect(409);
    expect(res.body.message).toMatch(/overlap/i);
    await t.get('/networks/pods-over').expect(404);
  });

  it('replaces a network by another with the same CIDR in one PATCH', async () => {
    // Swapping is valid: the final set has no overlap. The replacement is created first on
    // purpose (the order in which the flags are updated must not matter).
    const first = await t.newNetwork('bridge', '10.80.0.0/24');
    const second = await t.newNetwork('bridge', '10.80.0.0/24');
    await t.post('/routers', { name: 'r-swap', networks: [second.name] }).expect(201);
    const res = await t.patch('/routers/r-swap', { networks: [first.name] });
    expect({ status: res.status, body: res.body }).toMatchObject({
      status: 200,
      body: { networks: [first.name] },
    });
    expect(await routableViaApi(first.name)).toBe(true);
    expect(await routableViaApi(second.name)).toBe(false);
    const back = await t.patch('/routers/r-swap', { attach: [second.name], detach: [first.name] });
    expect({ status: back.status, body: back.body }).toMatchObject({
      status: 200,
      body: { networks: [second.name] },
    });
  });

  it('refuses to delete a network attached to a router (409)', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    await t.post('/routers', { name: 'r-hold', networks: [a.name] }).expect(201);
    const rev = await health();
    const res = await t.del(`/networks/${a.name}`).expect(409);
    expect(res.body).toMatchObject({ statusCode: 409, error: 'Conflict' });
    expect(res.body.message).toContain('router');
    await t.get(`/networks/${a.name}`).expect(200);
    expect(await attachedInDb('r-hold')).toEqual([a.name]);
    expect(await health()).toBe(rev);
    await t.patch('/routers/r-hold', { detach: [a.name] }).expect(200);
    await t.del(`/networks/${a.id}`).expect(200);
  });

  it('gives every mutating response a revision that increases', async () => {
    const a = await t.newNetwork('bridge', nextCidr());
    const b = await t.newNetwork('bridge', nextCidr());
    const revs: number[] = [];
    revs.push((await t.post('/routers', { name: 'r-rev' }).expect(201)).body.revision);
    revs.push((await t.patch('/routers/r-rev', { attach: [a.name] }).expect(200)).body.revision);
    revs.push((await t.patch('/routers/r-rev', { networks: [b.name] }).expect(200)).body.revision);
    revs.push((await t.patch('/routers/r-rev', { detach: [b.name] }).expect(200)).body.revision);
    revs.push((await t.del('/routers/r-rev').expect(200)).body.revision);
    for (const r of revs) expect(Number.isInteger(r)).toBe(true);
    for (let i = 1; i < revs.length; i++) expect(revs[i]).toBeGreaterThan(revs[i - 1]);
    expect(await health()).toBe(revs[revs.length - 1]);
    const [{ r }] = await sql<{ r: string }>(
      t.databaseUrl,
      'SELECT max(revision) AS r FROM revisions',
    );
    expect(Number(r)).toBe(revs[revs.length - 1]);
  });
});
