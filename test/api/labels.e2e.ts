/**
 * Labels on instances (issue 12, point 1): given at create (single and bulk), answered in
 * every instance view, replaced with PATCH (alone, or with a move in one revision), filtered
 * with `?label=key=value`, validated like Kubernetes labels (one rule for hosts and
 * instances). A change of labels alone is a revision that changes no host.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql, startController, type TestController } from '../support/controller.js';

let t: TestController;
let h1: any, h2: any;
beforeAll(async () => {
  t = await startController();
  h1 = await t.newHost();
  h2 = await t.newHost();
});
afterAll(() => t.close());

const fields = (res: { body: { details?: { field: string }[] } }) =>
  (res.body.details ?? []).map((d) => d.field).sort();

/** Every host's desired revision, by id. */
async function desiredRevisions(): Promise<Map<string, number>> {
  const rows = await sql<{ id: string; desired_revision: string }>(
    t.databaseUrl,
    'SELECT id, desired_revision FROM hosts',
  );
  return new Map(rows.map((r) => [r.id, Number(r.desired_revision)]));
}

async function revisionRow(revision: number) {
  const [row] = await sql<{ hosts: string[]; changes: any[] }>(
    t.databaseUrl,
    'SELECT hosts, changes FROM revisions WHERE revision = $1',
    [revision],
  );
  return row;
}

describe('labels on instances', () => {
  it('are {} by default and kept as given at create, on every path', async () => {
    const n = await t.newNetwork('overlay', '10.60.0.0/24');
    const plain = await t.newInstance(n.name, h1.name);
    expect(plain.labels).toEqual({});
    const labels = { app: 'web', 'example.com/tier': 'front-end', empty: '' };
    // the fast path (lowest free address) and the general one (explicit IP)
    const fast = await t.newInstance(n.name, h1.name, { labels });
    const explicit = await t.newInstance(n.name, h2.name, { labels, ip: '10.60.0.77' });
    expect(fast.labels).toEqual(labels);
    expect(explicit.labels).toEqual(labels);
    expect((await t.get(`/instances/${fast.name}`).expect(200)).body.labels).toEqual(labels);
    expect((await t.get(`/instances/${plain.id}`).expect(200)).body.labels).toEqual({});
    // the revision log carries them, and the topology loader reads them back
    const row = await revisionRow(fast.revision);
    expect(row.changes).toContainEqual({
      type: 'instance.upsert',
      instance: expect.objectContaining({ id: fast.id, labels }),
    });
    const [db] = await sql(t.databaseUrl, 'SELECT labels FROM instances WHERE id = $1', [
      explicit.id,
    ]);
    expect(db.labels).toEqual(labels);
  });

  it('are taken in bulk, per item', async () => {
    const n = await t.newNetwork('bridge', '10.61.0.0/24');
    const res = await t
      .post('/instances/bulk', {
        instances: [
          { name: 'lb-a', network: n.name, host: h1.name, labels: { app: 'a' } },
          { name: 'lb-b', network: n.name, host: h2.name },
          { name: 'lb-c', network: n.name, host: h1.name, ip: '10.61.0.99', labels: { app: 'c' } },
        ],
      })
      .expect(201);
    expect(res.body.items.map((i: any) => [i.name, i.labels])).toEqual([
      ['lb-a', { app: 'a' }],
      ['lb-b', {}],
      ['lb-c', { app: 'c' }],
    ]);
    const page = await t.get(`/instances?network=${n.name}`).expect(200);
    expect(page.body.items.map((i: any) => i.labels)).toEqual([{ app: 'a' }, {}, { app: 'c' }]);
  });

  it('PATCH relabels in a new revision that changes no host', async () => {
    const n = await t.newNetwork('overlay', '10.62.0.0/24');
    const a = await t.newInstance(n.name, h1.name, { labels: { app: 'web' } });
    await t.newInstance(n.name, h2.name); // a peer on another host
    const before = await desiredRevisions();
    const res = await t.patch(`/instances/${a.name}`, { labels: { app: 'db', tier: '1' } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: a.id,
      host: h1.name,
      ip: a.ip,
      mac: a.mac,
      labels: { app: 'db', tier: '1' },
    });
    expect(res.body.revision).toBeGreaterThan(a.revision);
    expect(await desiredRevisions()).toEqual(before);
    const row = await revisionRow(res.body.revision);
    expect(row.hosts).toEqual([]);
    expect(row.changes).toEqual([
      {
        type: 'instance.upsert',
        instance: {
          id: a.id,
          name: a.name,
          networkId: n.id,
          hostId: h1.id,
          ip: a.ip,
          mac: a.mac,
          labels: { app: 'db', tier: '1' },
        },
      },
    ]);
    const got = (await t.get(`/instances/${a.id}`).expect(200)).body;
    expect(got).toMatchObject({ labels: { app: 'db', tier: '1' }, revision: res.body.revision });
    // The same set again (in another order) is no change: no new revision.
    const same = await t.patch(`/instances/${a.id}`, { labels: { tier: '1', app: 'db' } });
    expect(same.status).toBe(200);
    expect(same.body.revision).toBe(res.body.revision);
    // {} removes them all.
    const cleared = await t.patch(`/instances/${a.id}`, { labels: {} }).expect(200);
    expect(cleared.body.labels).toEqual({});
    expect(await desiredRevisions()).toEqual(before);
  });

  it('a labels-only change does not make an active instance pending', async () => {
    const n = await t.newNetwork('bridge', '10.63.0.0/24');
    const a = await t.newInstance(n.name, h1.name);
    // Pretend h1's agent applied everything up to now.
    await sql(t.databaseUrl, 'UPDATE hosts SET applied_revision = desired_revision WHERE id = $1', [
      h1.id,
    ]);
    expect((await t.get(`/instances/${a.id}`).expect(200)).body.state).toBe('active');
    const res = await t.patch(`/instances/${a.id}`, { labels: { x: 'y' } }).expect(200);
    expect(res.body.state).toBe('active');
    expect((await t.get(`/instances/${a.id}`).expect(200)).body.state).toBe('active');
  });

  it('PATCH moves and relabels in one revision', async () => {
    const n = await t.newNetwork('overlay', '10.64.0.0/24');
    const a = await t.newInstance(n.name, h1.name, { labels: { app: 'web' } });
    const res = await t
      .patch(`/instances/${a.name}`, { host: h2.name, labels: { app: 'api' } })
      .expect(200);
    expect(res.body).toMatchObject({ host: h2.name, hostId: h2.id, ip: a.ip, mac: a.mac });
    expect(res.body.labels).toEqual({ app: 'api' });
    const row = await revisionRow(res.body.revision);
    expect([...row.hosts].sort()).toEqual([h1.id, h2.id].sort());
    expect(row.changes).toEqual([
      {
        type: 'instance.upsert',
        instance: expect.objectContaining({ id: a.id, hostId: h2.id, labels: { app: 'api' } }),
      },
    ]);
    const desired = await desiredRevisions();
    expect(desired.get(h1.id)).toBe(res.body.revision);
    expect(desired.get(h2.id)).toBe(res.body.revision);
    // a move alone keeps the labels
    const back = await t.patch(`/instances/${a.name}`, { host: h1.name }).expect(200);
    expect(back.body).toMatchObject({ host: h1.name, labels: { app: 'api' } });
    expect((await revisionRow(back.body.revision)).changes[0].type).toBe('instance.move');
  });

  it('PATCH needs host or labels; a block-based instance may be relabelled, not moved', async () => {
    const n = await t.newNetwork('routed', '10.65.0.0/16', { blockPrefixLen: 26 });
    const a = await t.newInstance(n.name, h1.name);
    const none = await t.patch(`/instances/${a.name}`, {}).expect(400);
    expect(fields(none)).toEqual(['host', 'labels']);
    await t.patch(`/instances/${a.name}`, { labels: { app: 'x' } }).expect(200);
    await t.patch(`/instances/${a.name}`, { host: h2.name, labels: { app: 'y' } }).expect(409);
    expect((await t.get(`/instances/${a.name}`).expect(200)).body.labels).toEqual({ app: 'x' });
    await t.patch('/instances/nope', { labels: {} }).expect(404);
  });

  it('refuses invalid keys, values and too many labels with a 400 naming the field', async () => {
    const n = await t.newNetwork('bridge', '10.66.0.0/24');
    const a = await t.newInstance(n.name, h1.name);
    const bad: Record<string, unknown>[] = [
      { 'bad key': 'x' },
      { '-a': 'x' },
      { 'a-': 'x' },
      { ['k'.repeat(64)]: 'x' },
      { 'Upper.Case/app': 'x' },
      { 'a..b/app': 'x' },
      { '/app': 'x' },
      { 'example.com/': 'x' },
      { 'a/b/c': 'x' },
      { [`${'p'.repeat(254)}/app`]: 'x' },
      { app: 'v'.repeat(64) },
      { app: 'has space' },
      { app: '-x' },
      { app: 1 },
      { app: null },
      Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])),
    ];
    for (const labels of bad) {
      const p = await t.patch(`/instances/${a.name}`, { labels });
      expect([p.status, fields(p), JSON.stringify(labels).slice(0, 40)]).toEqual([
        400,
        ['labels'],
        JSON.stringify(labels).slice(0, 40),
      ]);
      const c = await t.post('/instances', {
        name: 'lbad',
        network: n.name,
        host: h1.name,
        labels,
      });
      expect([c.status, fields(c)]).toEqual([400, ['labels']]);
    }
    const msg = (await t.patch(`/instances/${a.name}`, { labels: { 'bad key': 'x' } })).body
      .details[0].errors[0];
    expect(msg).toContain('"bad key"');
    for (const labels of [[], 'app=web', 5]) {
      const p = await t.patch(`/instances/${a.name}`, { labels });
      expect([p.status, fields(p)]).toEqual([400, ['labels']]);
    }
    const bulk = await t
      .post('/instances/bulk', {
        instances: [{ name: 'lb-ok', network: n.name, host: h1.name, labels: { '': 'x' } }],
      })
      .expect(400);
    expect(fields(bulk)).toEqual(['instances[0].labels']);
    // the limits themselves are accepted
    const max = {
      ...Object.fromEntries(Array.from({ length: 62 }, (_, i) => [`k${i}`, ''])),
      [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}/${'n'.repeat(63)}`]:
        'v'.repeat(63),
      'A_b.c-D': 'x_Y.z-0',
    };
    const ok = await t.patch(`/instances/${a.name}`, { labels: max }).expect(200);
    expect(ok.body.labels).toEqual(max);
    // hosts follow the same rule
    const hb = await t.patch(`/hosts/${h2.name}`, { labels: { 'a..b/app': 'x' } }).expect(400);
    expect(fields(hb)).toEqual(['labels']);
  });

  it('filters a list by one equality selector', async () => {
    const n = await t.newNetwork('bridge', '10.67.0.0/24');
    const web1 = await t.newInstance(n.name, h1.name, { labels: { 'f.io/app': 'web', x: '' } });
    const web2 = await t.newInstance(n.name, h2.name, { labels: { 'f.io/app': 'web' } });
    await t.newInstance(n.name, h1.name, { labels: { 'f.io/app': 'db', x: 'y' } });
    await t.newInstance(n.name, h2.name);
    const names = async (q: string) =>
      (await t.get(`/instances?${q}`).expect(200)).body.items.map((i: any) => i.name);
    expect(await names('label=f.io/app=web')).toEqual([web1.name, web2.name].sort());
    expect(await names(`label=${encodeURIComponent('f.io/app=web')}&host=${h2.name}`)).toEqual([
      web2.name,
    ]);
    expect(await names('label=x=')).toEqual([web1.name]);
    expect(await names('label=f.io/app=none')).toEqual([]);
    // pages
    const first = await t.get('/instances?label=f.io/app=web&limit=1').expect(200);
    expect(first.body.items.map((i: any) => i.name)).toEqual([[web1.name, web2.name].sort()[0]]);
    const next = await t
      .get(`/instances?label=f.io/app=web&limit=1&cursor=${first.body.nextCursor}`)
      .expect(200);
    expect(next.body.items.map((i: any) => i.name)).toEqual([[web1.name, web2.name].sort()[1]]);
    for (const q of ['label=app', 'label=bad key=x', 'label=app=-x', 'label==x']) {
      const res = await t.get(`/instances?${q.replace(' ', '%20')}`).expect(400);
      expect(fields(res)).toEqual(['label']);
    }
  });
});
