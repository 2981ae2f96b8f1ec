import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startController, sql, type TestController } from '../support/controller.js';
import { hashToken } from '../../apps/controller/src/auth/tokens.js';

let t: TestController;
beforeAll(async () => {
  t = await startController();
});
afterAll(() => t.close());

describe('hosts', () => {
  it('registers a host, returns the agent token once and stores only its hash', async () => {
    const res = await t
      .post('/hosts', {
        name: 'alpha',
        underlayIp: '192.0.2.201',
        asn: 64600,
        labels: { rack: 'r1' },
      })
      .expect(201);
    expect(res.body).toMatchObject({
      name: 'alpha',
      underlayIp: '192.0.2.201',
      uplink: 'eth0',
      asn: 64600,
      labels: { rack: 'r1' },
    });
    expect(res.body.agentToken).toMatch(/^lah_[A-Za-z0-9_-]{43}$/);
    expect(res.body.revision).toBeGreaterThan(0);
    expect(res.body).toMatchObject({
      agent: { connected: false },
      appliedRevision: 0,
      inSync: false,
    });
    const [row] = await sql(t.databaseUrl, 'SELECT agent_token_hash FROM hosts WHERE name = $1', [
      'alpha',
    ]);
    expect(row.agent_token_hash).toBe(hashToken(res.body.agentToken));
    const again = await t.get('/hosts/alpha').expect(200);
    expect(again.body.agentToken).toBeUndefined();
    expect(JSON.stringify(again.body)).not.toContain(row.agent_token_hash);
    const byId = await t.get(`/hosts/${res.body.id}`).expect(200);
    expect(byId.body.name).toBe('alpha');
  });

  it('refuses duplicate names and underlay IPs with 409', async () => {
    await t.post('/hosts', { name: 'dup', underlayIp: '192.0.2.202' }).expect(201);
    const byName = await t.post('/hosts', { name: 'dup', underlayIp: '192.0.2.203' }).expect(409);
    expect(byName.body).toMatchObject({
      statusCode: 409,
      error: 'Conflict',
      message: expect.stringContaining('name'),
    });
    const byIp = await t.post('/hosts', { name: 'dup2', underlayIp: '192.0.2.202' }).expect(409);
    expect(byIp.body.message).toContain('underlay IP');
  });

  it('names every invalid field', async () => {
    const res = await t
      .post('/hosts', {
        name: 'Bad_Name',
        underlayIp: '300.1.1.1',
        uplink: 'averyveryverylongname',
        asn: 0,
        labels: { 'bad key!': 'x' },
        extra: 1,
      })
      .expect(400);
    const fields = res.body.details.map((d: { field: string }) => d.field).sort();
    expect(fields).toEqual(['asn', 'extra', 'labels', 'name', 'underlayIp', 'uplink']);
    await t.post('/hosts', { name: 'lo', underlayIp: '127.0.0.1' }).expect(400);
    await t.post('/hosts', { name: 'mc', underlayIp: '224.0.0.1' }).expect(400);
    await t.post('/hosts', {}).expect(400);
  });

  it('updates a host: underlay, uplink, ASN and labels, with the same rules as on create', async () => {
    const h = await t.newHost({ asn: 65001 });
    const res = await t
      .patch(`/hosts/${h.name}`, { uplink: 'ens3', asn: null, labels: { rack: 'r9' } })
      .expect(200);
    expect(res.body).toMatchObject({
      id: h.id,
      uplink: 'ens3',
      asn: null,
      labels: { rack: 'r9' },
      underlayIp: h.underlayIp,
    });
    expect(res.body.revision).toBeGreaterThan(h.revision);
    const same = await t.patch(`/hosts/${h.id}`, { uplink: 'ens3' }).expect(200);
    expect(same.body.revision).toBe(res.body.revision); // nothing changed, no new revision
    const other = await t.newHost();
    expect(
      (await t.patch(`/hosts/${h.name}`, { underlayIp: other.underlayIp }).expect(409)).body
        .message,
    ).toContain('underlay IP');
    const bad = await t
      .patch(`/hosts/${h.name}`, {
        underlayIp: '127.0.0.1',
        asn: 0,
        uplink: 'way-too-long-name',
        name: 'x',
      })
      .expect(400);
    expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual([
      'asn',
      'name',
      'underlayIp',
      'uplink',
    ]);
    await t.patch('/hosts/nope', { uplink: 'eth1' }).expect(404);
  });

  it('lists hosts in pages with a cursor', async () => {
    for (let i = 0; i < 5; i++)
      await t.post('/hosts', { name: `page-${i}`, underlayIp: `192.0.2.${100 + i}` }).expect(201);
    const names: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { body: any } = await t
        .get(`/hosts?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        .expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      names.push(...res.body.items.map((h: { name: string }) => h.name));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    const all = (await t.get('/hosts?limit=1000').expect(200)).body.items.map(
      (h: { name: string }) => h.name,
    );
    expect(names).toEqual(all);
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(all.length / 2));
    expect([...names].sort()).toEqual(names);
    await t.get('/hosts?limit=0').expect(400);
    await t.get('/hosts?limit=1001').expect(400);
    await t.get('/hosts?cursor=garbage').expect(400);
  });

  it('deletes a host only when it has no instances', async () => {
    const h = await t.newHost();
    const n = await t.newNetwork('bridge', '10.200.0.0/24');
    const i = await t.newInstance(n.name, h.name);
    const res = await t.del(`/hosts/${h.name}`).expect(409);
    expect(res.body.message).toContain('instance');
    await t.del(`/instances/${i.name}`).expect(200);
    const del = await t.del(`/hosts/${h.id}`).expect(200);
    expect(del.body).toMatchObject({ id: h.id, deleted: true });
    expect(del.body.revision).toBeGreaterThan(i.revision);
    await t.get(`/hosts/${h.name}`).expect(404);
    await t.del(`/hosts/${h.name}`).expect(404);
    // a JSON content type with an empty body (as curl scripts send it) is no body
    const other = await t.newHost();
    await t.del(`/hosts/${other.name}`).set('content-type', 'application/json').expect(200);
  });
});
