import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { sql, startController, type TestController } from '../support/controller.js';

/**
 * A reference (path segment, `network`/`host` of an instance, a router's networks) that
 * has the form of a UUID is always an id, anything else a name; so no name may have the
 * form of a UUID, and an id and a name can never be confused.
 */
let t: TestController;

beforeAll(async () => {
  t = await startController();
});

afterAll(async () => {
  await t?.close();
});

/** The 400 names `field` and says why. */
function expectUuidRefused(body: any, field = 'name') {
  expect(body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
  const d = (body.details as { field: string; errors: string[] }[]).find((x) => x.field === field);
  expect(d).toBeDefined();
  expect(d!.errors.join(' ')).toMatch(/must not have the form of a UUID/);
}

describe('names of the form of a UUID', () => {
  it('are refused for a host, even one named like another host’s id', async () => {
    const victim = await t.newHost();
    const res = await t.post('/hosts', { name: victim.id, underlayIp: '192.0.2.200' }).expect(400);
    expectUuidRefused(res.body);
    // a random UUID, an upper-case one (not even a name otherwise) and the nil UUID too
    for (const name of [
      randomUUID(),
      randomUUID().toUpperCase(),
      '00000000-0000-0000-0000-000000000000',
    ])
      expectUuidRefused(
        (await t.post('/hosts', { name, underlayIp: '192.0.2.201' }).expect(400)).body,
      );
    const [{ n }] = await sql(t.databaseUrl, 'SELECT count(*)::int AS n FROM hosts');
    expect(n).toBe(1);

    // so DELETE /hosts/<that string> can only mean the id
    await t.del(`/hosts/${victim.id}`).expect(200);
    await t.get(`/hosts/${victim.id}`).expect(404);
  });

  it('are refused for networks, instances and routers', async () => {
    const h = await t.newHost();
    const net = await t.newNetwork('bridge', '10.90.0.0/24');
    expectUuidRefused(
      (
        await t
          .post('/networks', { name: net.id, model: 'bridge', cidr: '10.91.0.0/24' })
          .expect(400)
      ).body,
    );
    expectUuidRefused(
      (await t.post('/instances', { name: h.id, network: net.name, host: h.name }).expect(400))
        .body,
    );
    expectUuidRefused((await t.post('/routers', { name: randomUUID() }).expect(400)).body);
    const counts = await sql(
      t.databaseUrl,
      `SELECT (SELECT count(*) FROM networks)::int AS networks, (SELECT count(*) FROM instances)::int AS instances,
              (SELECT count(*) FROM routers)::int AS routers`,
    );
    expect(counts[0]).toEqual({ networks: 1, instances: 0, routers: 0 });
  });

  it('are refused in a bulk create, naming the item, and nothing of the bulk is created', async () => {
    const h = await t.newHost();
    const net = await t.newNetwork('bridge', '10.92.0.0/24');
    const res = await t
      .post('/instances/bulk', {
        instances: [
          { name: 'bulk-ok-1', network: net.name, host: h.name },
          { name: randomUUID(), network: net.id, host: h.id },
          { name: 'bulk-ok-2', network: net.name, host: h.name },
        ],
      })
      .expect(400);
    expectUuidRefused(res.body, 'instances[1].name');
    const [{ n }] = await sql(
      t.databaseUrl,
      'SELECT count(*)::int AS n FROM instances WHERE network_id = $1',
      [net.id],
    );
    expect(n).toBe(0);
  });

  it('cannot come in by a rename: PATCH takes no name', async () => {
    const h = await t.newHost();
    const r = (await t.post('/routers', { name: 'rename-me' }).expect(201)).body;
    for (const [path, id] of [
      ['/hosts', h.id],
      ['/routers', r.id],
    ]) {
      const res = await t.patch(`${path}/${id}`, { name: randomUUID() }).expect(400);
      expect(res.body.details).toEqual(
        expect.arrayContaining([expect.objectContaining({ field: 'name' })]),
      );
    }
  });

  it('leave names that merely look alike usable, looked up as names', async () => {
    // 32 hex digits without hyphens, and hyphens in the wrong places, are names
    const noHyphens = randomUUID().replaceAll('-', '');
    const misgrouped = '0123-4567-89ab-cdef-0123-4567-89ab-cd';
    for (const [i, name] of [noHyphens, misgrouped].entries()) {
      const h = (await t.post('/hosts', { name, underlayIp: `192.0.2.${210 + i}` }).expect(201))
        .body;
      expect((await t.get(`/hosts/${name}`).expect(200)).body.id).toBe(h.id);
      await t.del(`/hosts/${name}`).expect(200);
    }
  });

  it('a reference of the form of a UUID is an id: 404 when no object has it', async () => {
    const h = await t.newHost();
    const net = await t.newNetwork('bridge', '10.93.0.0/24');
    const unknown = randomUUID();
    await t.get(`/hosts/${unknown}`).expect(404);
    await t.del(`/networks/${unknown}`).expect(404);
    const res = await t
      .post('/instances', { name: 'ref-check', network: net.name, host: unknown })
      .expect(404);
    expect(res.body.message).toContain(unknown);
    // by id, either way
    await t.post('/instances', { name: 'ref-ok', network: net.id, host: h.id }).expect(201);
  });
});
