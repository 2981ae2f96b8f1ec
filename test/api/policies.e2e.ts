/**
 * Network policies over the API (issue 12): create, read, list, change, delete; every field
 * validated with its path named; the policy reaches the desired state of exactly the hosts
 * of the instances it selects; `?dryRun=true` answers a preview and commits nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, startController, type TestController } from '../support/controller.js';

let t: TestController;
let h1: any, h2: any, net: any, web: any, db: any, other: any;
beforeAll(async () => {
  t = await startController();
  h1 = await t.newHost();
  h2 = await t.newHost();
  net = await t.newNetwork('overlay', '10.71.0.0/24');
  web = await t.newInstance(net.name, h1.name, { labels: { app: 'web' } });
  db = await t.newInstance(net.name, h2.name, { labels: { app: 'db' } });
  other = await t.newInstance(net.name, h2.name, { labels: { app: 'other' } });
});
afterAll(() => t.close());

const fields = (res: { body: { details?: { field: string }[] } }) =>
  (res.body.details ?? []).map((d) => d.field).sort();

const WEB_FROM_DB = () => ({
  selector: { matchLabels: { app: 'web' } },
  ingress: [
    {
      peers: [{ selector: { matchLabels: { app: 'db' } }, networks: [net.name] }],
      ports: [{ protocol: 'tcp', port: 80 }],
    },
  ],
});

async function kinds(hostId: string): Promise<string[]> {
  const r = await t.get(`/hosts/${hostId}/desired-state`).expect(200);
  return (r.body.resources as { kind: string; key: string }[])
    .filter((x) => x.kind === 'policy' || x.kind === 'pmember')
    .map((x) => x.kind)
    .sort();
}

async function latestRevision(): Promise<number> {
  const [r] = await sql(t.databaseUrl, 'SELECT coalesce(max(revision), 0) AS r FROM revisions');
  return Number(r.r);
}

describe('policies', () => {
  it('are created normalised, read by id or name, listed, changed and deleted', async () => {
    const c = await t.post('/policies', { name: 'web-from-db', ...WEB_FROM_DB() }).expect(201);
    expect(c.body).toMatchObject({
      name: 'web-from-db',
      selector: { matchLabels: { app: 'web' }, matchExpressions: [] },
      networkIds: [],
      networks: [],
      ingress: [
        {
          peers: [
            {
              selector: { matchLabels: { app: 'db' }, matchExpressions: [] },
              networkIds: [net.id],
              networks: [net.name],
            },
          ],
          ports: [{ protocol: 'tcp', port: 80, endPort: null }],
        },
      ],
      egress: null,
    });
    expect(c.body.revision).toBe(await latestRevision());
    // web's host gets its chains and the db set (one member); db's host nothing.
    expect(await kinds(h1.id)).toEqual(['pmember', 'policy']);
    expect(await kinds(h2.id)).toEqual([]);
    expect((await t.get(`/policies/web-from-db`).expect(200)).body.id).toBe(c.body.id);
    expect((await t.get(`/policies/${c.body.id}`).expect(200)).body.name).toBe('web-from-db');
    const list = await t.get('/policies?limit=1').expect(200);
    expect(list.body.items.map((p: any) => p.name)).toEqual(['web-from-db']);

    // A label change that makes `other` a db: one more member on web's host.
    await t.patch(`/instances/${other.id}`, { labels: { app: 'db' } }).expect(200);
    expect(await kinds(h1.id)).toEqual(['pmember', 'pmember', 'policy']);

    const p = await t.patch('/policies/web-from-db', { egress: [], ingress: null }).expect(200);
    expect(p.body.ingress).toBeNull();
    expect(p.body.egress).toEqual([]);
    expect(p.body.revision).toBeGreaterThan(c.body.revision);
    expect(await kinds(h1.id)).toEqual(['policy']);
    const bad = await t.patch('/policies/web-from-db', { egress: null }).expect(400);
    expect(fields(bad)).toEqual(['ingress']);

    await t.post('/policies', { name: 'web-from-db', ...WEB_FROM_DB() }).expect(409);
    const d = await t.del('/policies/web-from-db').expect(200);
    expect(d.body).toMatchObject({ id: c.body.id, deleted: true });
    expect(await kinds(h1.id)).toEqual([]);
    await t.get('/policies/web-from-db').expect(404);
    await t.patch(`/instances/${other.id}`, { labels: { app: 'other' } }).expect(200);
  });

  it('names each invalid field', async () => {
    const cases: [Record<string, unknown>, string[]][] = [
      [{ name: 'p1', selector: {} }, ['ingress']],
      [
        { name: 'p1', selector: { matchLabels: { 'bad key!': 'x' } }, ingress: [] },
        ['selector.matchLabels'],
      ],
      [
        {
          name: 'p1',
          selector: { matchExpressions: [{ key: 'app', operator: 'In' }] },
          ingress: [],
        },
        ['selector.matchExpressions[0].values'],
      ],
      [
        {
          name: 'p1',
          selector: { matchExpressions: [{ key: 'app', operator: 'Near' }] },
          ingress: [],
        },
        ['selector.matchExpressions[0].operator'],
      ],
      [
        { name: 'p1', selector: {}, ingress: [{ ports: [{ protocol: 'icmp', port: 1 }] }] },
        ['ingress[0].ports[0].port'],
      ],
      [
        {
          name: 'p1',
          selector: {},
          ingress: [{ ports: [{ protocol: 'tcp', port: 90, endPort: 80 }] }],
        },
        ['ingress[0].ports[0].endPort'],
      ],
      [
        { name: 'p1', selector: {}, egress: [{ peers: [{ cidr: '10.0.0.1/8' }] }] },
        ['egress[0].peers[0].cidr'],
      ],
      [
        {
          name: 'p1',
          selector: {},
          egress: [{ peers: [{ cidr: '10.0.0.0/8', except: ['11.0.0.0/16'] }] }],
        },
        ['egress[0].peers[0].except[0]'],
      ],
      [{ name: 'p1', selector: {}, egress: [{ peers: [{}] }] }, ['egress[0].peers[0]']],
      [{ name: 'p1', selector: {}, egress: [{ bogus: 1 }] }, ['egress[0].bogus']],
      [
        { name: 'p1', selector: {}, egress: [{ ports: [{ protocol: 'sctp' }] }] },
        ['egress[0].ports[0].protocol'],
      ],
    ];
    for (const [body, want] of cases) {
      const r = await t.post('/policies', body).expect(400);
      expect([JSON.stringify(body), fields(r)]).toEqual([JSON.stringify(body), want]);
    }
    await t
      .post('/policies', { name: 'p1', selector: {}, ingress: [], networks: ['no-such-net'] })
      .expect(404);
    expect((await t.get('/policies').expect(200)).body.items).toEqual([]);
  });

  it('previews a change without committing it', async () => {
    const before = await latestRevision();
    const r = await t
      .post('/policies?dryRun=true', {
        name: 'deny-web',
        selector: { matchLabels: { app: 'web' } },
        ingress: [],
      })
      .expect(200);
    expect(r.body.dryRun).toBe(true);
    expect(r.body.policy.name).toBe('deny-web');
    expect(r.body.selected).toEqual({ added: [{ id: web.id, name: web.name }], removed: [] });
    const denied = r.body.denied.map((f: any) => `${f.from.name}>${f.to.name}`).sort();
    expect(denied).toEqual([`${db.name}>${web.name}`, `${other.name}>${web.name}`].sort());
    for (const f of r.body.denied)
      expect(f.ports).toEqual([{ protocol: 'any', port: null, endPort: null }]);
    expect(r.body.allowed).toEqual([]);
    expect(r.body.hosts).toEqual([{ id: h1.id, name: h1.name }]);
    expect(r.body.truncated).toBe(false);
    expect(await latestRevision()).toBe(before);
    expect((await t.get('/policies').expect(200)).body.items).toEqual([]);

    // PATCH and DELETE previews of a real policy.
    await t
      .post('/policies', {
        name: 'deny-web',
        selector: { matchLabels: { app: 'web' } },
        ingress: [],
      })
      .expect(201);
    const committed = await latestRevision();
    const pr = await t
      .patch('/policies/deny-web?dryRun=true', {
        ingress: [{ ports: [{ protocol: 'tcp', port: 443 }] }],
      })
      .expect(200);
    expect(pr.body.allowed.map((f: any) => f.ports)).toContainEqual([
      { protocol: 'tcp', port: 443, endPort: null },
    ]);
    const dr = await t.del('/policies/deny-web?dryRun=true').expect(200);
    expect(dr.body.selected.removed).toEqual([{ id: web.id, name: web.name }]);
    expect(dr.body.allowed).toHaveLength(2);
    expect(await latestRevision()).toBe(committed);
    expect((await t.get('/policies/deny-web').expect(200)).body.ingress).toEqual([]);
    // A dry run still refuses what the real request would: a taken name, bad values.
    await t
      .post('/policies?dryRun=true', { name: 'deny-web', selector: {}, ingress: [] })
      .expect(409);
    await t.post('/policies?dryRun=maybe', { name: 'x1', selector: {}, ingress: [] }).expect(400);
    await t.del('/policies/deny-web').expect(200);
  });
});
