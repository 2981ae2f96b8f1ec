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

  it('normalises what it stores and refuses every rule, limit and unknown reference', async () => {
    const r0 = await latestRevision();
    const c = await t
      .post('/policies', {
        name: 'norm',
        selector: {
          matchExpressions: [{ key: 'tier', operator: 'In', values: ['b', 'a', 'b'] }],
        },
        networks: [net.name, net.id],
        egress: [
          {},
          {
            peers: [{ cidr: '10.0.0.0/8', except: ['10.2.0.0/16', '10.1.0.0/16'] }],
            ports: [
              { protocol: 'udp', port: 53, endPort: 53 },
              { protocol: 'tcp', port: 8000, endPort: 8080 },
              { protocol: 'icmp' },
            ],
          },
        ],
      })
      .expect(201);
    expect(c.body).toMatchObject({
      selector: {
        matchLabels: {},
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['a', 'b'] }],
      },
      networkIds: [net.id],
      networks: [net.name],
      ingress: null,
      egress: [
        { peers: [], ports: [] },
        {
          peers: [{ cidr: '10.0.0.0/8', except: ['10.1.0.0/16', '10.2.0.0/16'] }],
          ports: [
            { protocol: 'udp', port: 53, endPort: null },
            { protocol: 'tcp', port: 8000, endPort: 8080 },
            { protocol: 'icmp', port: null, endPort: null },
          ],
        },
      ],
    });
    expect(c.body.revision).toBeGreaterThan(r0);
    const [row] = await sql(t.databaseUrl, `SELECT spec FROM policies WHERE name = 'norm'`);
    expect(row.spec.networkIds).toEqual([net.id]);

    // Each mutation is one revision; GET shows the revision of the last change.
    const p = await t.patch(`/policies/${c.body.id}`, { selector: {} }).expect(200);
    expect(p.body.revision).toBeGreaterThan(c.body.revision);
    expect(p.body.selector).toEqual({ matchLabels: {}, matchExpressions: [] });
    expect(p.body.egress).toEqual(c.body.egress);
    expect((await t.get('/policies/norm').expect(200)).body.revision).toBe(p.body.revision);

    // PATCH refusals, each naming its field; unknown references are 404s.
    const patchCases: [Record<string, unknown>, string[]][] = [
      [{ ingress: 'all' }, ['ingress']],
      [{ selector: { matchLabels: { app: 'bad value!' } } }, ['selector.matchLabels']],
      [{ egress: null }, ['ingress']],
      [{ egress: [{ ports: [{ protocol: 'tcp', endPort: 80 }] }] }, ['egress[0].ports[0].endPort']],
    ];
    for (const [body, want] of patchCases) {
      const r = await t.patch('/policies/norm', body).expect(400);
      expect([JSON.stringify(body), fields(r)]).toEqual([JSON.stringify(body), want]);
    }
    await t.patch('/policies/norm', { networks: ['no-such-net'] }).expect(404);
    await t
      .patch('/policies/norm', {
        ingress: [{ peers: [{ selector: {}, networks: ['no-such-net'] }] }],
      })
      .expect(404);
    await t.patch('/policies/no-such-policy', { selector: {} }).expect(404);
    await t.patch('/policies/no-such-policy?dryRun=true', { selector: {} }).expect(404);
    await t.del('/policies/no-such-policy').expect(404);
    await t.del('/policies/no-such-policy?dryRun=true').expect(404);
    await t.get('/policies/00000000-0000-4000-8000-000000000000').expect(404);
    expect(await latestRevision()).toBe(p.body.revision);

    const d = await t.del('/policies/norm').expect(200);
    expect(d.body.revision).toBeGreaterThan(p.body.revision);

    // Create refusals not covered above, limits included (64 is the most of each).
    const many = <T>(n: number, f: (i: number) => T) => Array.from({ length: n }, (_, i) => f(i));
    const expr = (values: string[]) => ({ key: 'k', operator: 'In', values });
    const cases: [Record<string, unknown>, string[]][] = [
      [{ name: 'Bad_Name', selector: {}, ingress: [] }, ['name']],
      [{ name: 'p2', ingress: [] }, ['selector']],
      [
        {
          name: 'p2',
          selector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] },
          ingress: [],
        },
        ['selector.matchExpressions[0].values'],
      ],
      [
        {
          name: 'p2',
          selector: { matchExpressions: [{ key: '-a', operator: 'Exists' }] },
          ingress: [],
        },
        ['selector.matchExpressions[0].key'],
      ],
      [
        { name: 'p2', selector: {}, ingress: [{ peers: [{ selector: {}, cidr: '10.0.0.0/8' }] }] },
        ['ingress[0].peers[0]'],
      ],
      [
        {
          name: 'p2',
          selector: {},
          ingress: [{ peers: [{ selector: { matchLabels: { a: '-' } } }] }],
        },
        ['ingress[0].peers[0].selector.matchLabels'],
      ],
      [
        { name: 'p2', selector: {}, ingress: [{ ports: [{ protocol: 'tcp', port: 0 }] }] },
        ['ingress[0].ports[0].port'],
      ],
      [
        {
          name: 'p2',
          selector: {},
          ingress: [{ ports: [{ protocol: 'udp', port: 1, endPort: 65536 }] }],
        },
        ['ingress[0].ports[0].endPort'],
      ],
      [
        { name: 'p2', selector: {}, ingress: [{ ports: [{ protocol: 'any', endPort: 5 }] }] },
        ['ingress[0].ports[0].endPort'],
      ],
      [
        {
          name: 'p2',
          selector: {},
          ingress: [{ ports: [{ protocol: 'tcp', port: 'x', endPort: 80 }] }],
        },
        ['ingress[0].ports[0].port'],
      ],
      [{ name: 'p2', selector: {}, ingress: many(65, () => ({})) }, ['ingress']],
      [
        {
          name: 'p2',
          selector: {},
          ingress: [{ peers: many(65, () => ({ cidr: '10.0.0.0/8' })) }],
        },
        ['ingress[0].peers'],
      ],
      [
        {
          name: 'p2',
          selector: {},
          egress: [{ ports: many(65, (i) => ({ protocol: 'tcp', port: i + 1 })) }],
        },
        ['egress[0].ports'],
      ],
      [
        { name: 'p2', selector: { matchExpressions: many(65, () => expr(['v'])) }, ingress: [] },
        ['selector.matchExpressions'],
      ],
      [
        {
          name: 'p2',
          selector: { matchExpressions: [expr(many(65, (i) => `v${i}`))] },
          ingress: [],
        },
        ['selector.matchExpressions[0].values'],
      ],
    ];
    for (const [body, want] of cases) {
      const r = await t.post('/policies', body).expect(400);
      expect([JSON.stringify(body), fields(r)]).toEqual([JSON.stringify(body), want]);
    }
    await t
      .post('/policies', {
        name: 'p2',
        selector: {},
        egress: [{ peers: [{ selector: {}, networks: ['no-such-net'] }] }],
      })
      .expect(404);
    const atLimit = {
      name: 'limits',
      selector: {
        matchExpressions: [expr(many(64, (i) => `v${i}`)), ...many(63, () => expr(['v']))],
      },
      ingress: [
        {
          peers: many(64, (i) => ({ cidr: `10.${i}.0.0/16` })),
          ports: many(64, (i) => ({ protocol: 'tcp', port: i + 1 })),
        },
        ...many(63, () => ({})),
      ],
    };
    const big = await t.post('/policies', atLimit).expect(201);
    expect(big.body.ingress).toHaveLength(64);
    expect(big.body.selector.matchExpressions[0].values).toHaveLength(64);
    expect(big.body.ingress[0].peers).toHaveLength(64);
    await t.del('/policies/limits').expect(200);
  });

  it('keeps the id of a deleted network, which then matches nothing', async () => {
    const gone = await t.newNetwork('overlay', '10.72.0.0/24');
    const c = await t
      .post('/policies', {
        name: 'dangling',
        selector: {},
        networks: [gone.name],
        ingress: [{ peers: [{ selector: {}, networks: [gone.id, net.name] }] }],
      })
      .expect(201);
    expect(c.body.networks).toEqual([gone.name]);
    await t.del(`/networks/${gone.id}`).expect(200);
    const g = await t.get('/policies/dangling').expect(200);
    expect(g.body.networkIds).toEqual([gone.id]);
    expect(g.body.networks).toEqual([]);
    expect(g.body.ingress[0].peers[0].networkIds).toEqual([gone.id, net.id].sort());
    expect(g.body.ingress[0].peers[0].networks).toEqual([net.name]);
    // It selects nothing: no host holds policy resources for it.
    expect(await kinds(h1.id)).toEqual([]);
    expect(await kinds(h2.id)).toEqual([]);
    await t.del('/policies/dangling').expect(200);
  });

  it('lists policies in pages with a cursor', async () => {
    for (let i = 0; i < 5; i++)
      await t.post('/policies', { name: `page-p${i}`, selector: {}, egress: [{}] }).expect(201);
    const names: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { body: { items: { name: string }[]; nextCursor: string | null } } = await t
        .get(`/policies?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        .expect(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      names.push(...res.body.items.map((p) => p.name));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    expect(names).toEqual(['page-p0', 'page-p1', 'page-p2', 'page-p3', 'page-p4']);
    expect(pages).toBe(3);
    const all = (await t.get('/policies?limit=1000').expect(200)).body;
    expect(all.nextCursor).toBeNull();
    expect(all.items).toHaveLength(5);
    await t.get('/policies?limit=0').expect(400);
    await t.get('/policies?cursor=garbage').expect(400);
    for (let i = 0; i < 5; i++) await t.del(`/policies/page-p${i}`).expect(200);
  });
});
