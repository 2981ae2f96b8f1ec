import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import request from 'supertest';
import {
  ADMIN_TOKEN,
  VIEWER_TOKEN,
  startController,
  sql,
  type TestController,
} from '../support/controller.js';

let t: TestController;
let host: { id: string; name: string };
let net: { id: string; name: string };
let inst: { id: string; name: string };
let router: { id: string; name: string };

beforeAll(async () => {
  t = await startController();
  host = await t.newHost();
  net = await t.newNetwork('overlay', '10.30.0.0/24');
  inst = await t.newInstance(net.name, host.name);
  router = (await t.post('/routers', { name: 'err-r1' }).expect(201)).body;
});
afterAll(() => t?.close());

const ERROR_KEYS = ['statusCode', 'error', 'message', 'details'];

/** The one error body of SPEC §3: exactly these keys, the right types, status mirrored. */
function expectErrorBody(res: request.Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.body as Record<string, unknown>;
  expect(typeof body).toBe('object');
  for (const k of Object.keys(body)) expect(ERROR_KEYS).toContain(k);
  expect(body.statusCode).toBe(status);
  expect(typeof body.error).toBe('string');
  expect((body.error as string).length).toBeGreaterThan(0);
  expect(typeof body.message).toBe('string');
  expect((body.message as string).length).toBeGreaterThan(0);
}

function fieldsOf(res: request.Response): string[] {
  expect(Array.isArray(res.body.details)).toBe(true);
  return [...new Set<string>(res.body.details.map((d: { field: string }) => d.field))].sort();
}

async function revision(): Promise<number> {
  const res = await t.get('/health', '').expect(200);
  return res.body.revision as number;
}

async function count(table: string): Promise<number> {
  const [{ n }] = await sql<{ n: string }>(t.databaseUrl, `SELECT count(*) AS n FROM ${table}`);
  return Number(n);
}

describe('authentication and roles', () => {
  const reads = ['/hosts', '/networks', '/instances', '/routers', '/pools', '/metrics'];

  it('answers 401 without a token or with a wrong one, on reads and writes', async () => {
    for (const p of [...reads, `/hosts/${host.name}`, `/networks/${net.id}`]) {
      const none = await t.get(p, '');
      expectErrorBody(none, 401);
      expect(none.body.error).toBe('Unauthorized');
      expectErrorBody(await t.get(p, 'wrong-token-0123456789'), 401);
    }
    const before = await count('hosts');
    const rev = await revision();
    expectErrorBody(await t.post('/hosts', { name: 'nope', underlayIp: '192.0.2.250' }, ''), 401);
    expectErrorBody(
      await t.post('/hosts', { name: 'nope', underlayIp: '192.0.2.250' }, 'wrong-token-0123456789'),
      401,
    );
    // A valid token in a non-Bearer scheme is not accepted.
    const basic = await request(t.url)
      .get('/api/v1/hosts')
      .set('authorization', `Basic ${ADMIN_TOKEN}`);
    expectErrorBody(basic, 401);
    expectErrorBody(
      await t.post('/networks', { name: 'nope', model: 'bridge', cidr: '10.31.0.0/24' }, ''),
      401,
    );
    expectErrorBody(await t.del(`/instances/${inst.name}`, ''), 401);
    expectErrorBody(await t.patch(`/instances/${inst.name}`, { host: host.name }, 'x'), 401);
    // Bad input without a token is still a 401, not a 400.
    expectErrorBody(await t.post('/hosts', { bogus: true }, ''), 401);
    expect(await count('hosts')).toBe(before);
    await t.get(`/instances/${inst.name}`).expect(200);
    expect(await revision()).toBe(rev);
  });

  it('lets the viewer token read but not write (403)', async () => {
    for (const p of [
      ...reads,
      `/hosts/${host.name}`,
      `/networks/${net.name}`,
      `/instances/${inst.id}`,
      `/routers/${router.name}`,
    ]) {
      await t.get(p, VIEWER_TOKEN).expect(200);
    }
    const rev = await revision();
    const writes = [
      t.post('/hosts', { name: 'viewer-h', underlayIp: '192.0.2.251' }, VIEWER_TOKEN),
      t.post(
        '/networks',
        { name: 'viewer-n', model: 'bridge', cidr: '10.32.0.0/24' },
        VIEWER_TOKEN,
      ),
      t.post('/instances', { name: 'viewer-i', network: net.name, host: host.name }, VIEWER_TOKEN),
      t.post(
        '/instances/bulk',
        { instances: [{ name: 'viewer-b', network: net.name, host: host.name }] },
        VIEWER_TOKEN,
      ),
      t.post('/routers', { name: 'viewer-r' }, VIEWER_TOKEN),
      t.patch(`/instances/${inst.name}`, { host: host.name }, VIEWER_TOKEN),
      t.patch(`/routers/${router.name}`, { attach: [net.name] }, VIEWER_TOKEN),
      t.del(`/instances/${inst.name}`, VIEWER_TOKEN),
      t.del(`/routers/${router.name}`, VIEWER_TOKEN),
      t.del(`/networks/${net.name}`, VIEWER_TOKEN),
      t.del(`/hosts/${host.name}`, VIEWER_TOKEN),
    ];
    for (const w of writes) {
      const res = await w;
      expectErrorBody(res, 403);
      expect(res.body.error).toBe('Forbidden');
    }
    expect(await revision()).toBe(rev);
    for (const name of ['viewer-h', 'viewer-n', 'viewer-i', 'viewer-b', 'viewer-r']) {
      const rows = await sql(
        t.databaseUrl,
        `SELECT name FROM hosts WHERE name = $1 UNION ALL SELECT name FROM networks WHERE name = $1
         UNION ALL SELECT name FROM instances WHERE name = $1 UNION ALL SELECT name FROM routers WHERE name = $1`,
        [name],
      );
      expect(rows).toHaveLength(0);
    }
    await t.get(`/instances/${inst.name}`).expect(200);
    await t.get(`/routers/${router.name}`).expect(200);
    expect((await t.get(`/routers/${router.name}`).expect(200)).body.networks).toEqual([]);
  });
});

describe('health, metrics and OpenAPI', () => {
  it('serves health without a token, reporting the database and the revision', async () => {
    const res = await t.get('/health', '').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', database: 'up' });
    const [{ r }] = await sql<{ r: string }>(
      t.databaseUrl,
      'SELECT max(revision) AS r FROM revisions',
    );
    expect(res.body.revision).toBe(Number(r));
    await t.get('/health', 'wrong-token-0123456789').expect(200);
  });

  it('serves Prometheus metrics (with a token) that follow the inventory', async () => {
    expectErrorBody(await t.get('/metrics', ''), 401);
    const hostsGauge = async () => {
      const res = await t.get('/metrics').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.text).toMatch(/^# HELP lattice_objects /m);
      expect(res.text).toMatch(/^# TYPE lattice_objects gauge$/m);
      const m = /^lattice_objects\{kind="hosts"\} (\d+)$/m.exec(res.text);
      expect(m).not.toBeNull();
      const inst = /^lattice_objects\{kind="instances"\} (\d+)$/m.exec(res.text);
      expect(Number(inst![1])).toBe(await count('instances'));
      return Number(m![1]);
    };
    const before = await hostsGauge();
    expect(before).toBe(await count('hosts'));
    await t.newHost();
    await t.newHost();
    expect(await hostsGauge()).toBe(before + 2);
    const viewer = await t.get('/metrics', VIEWER_TOKEN).expect(200);
    expect(viewer.text).toContain('lattice_objects{kind="hosts"}');
  });

  it('publishes the OpenAPI document with the API paths', async () => {
    const res = await request(t.url).get('/api/docs-json').expect(200);
    expect(res.headers['content-type']).toMatch(/json/);
    expect(typeof res.body.openapi).toBe('string');
    const paths = Object.keys(res.body.paths as object);
    for (const p of [
      '/api/v1/health',
      '/api/v1/hosts',
      '/api/v1/hosts/{idOrName}',
      '/api/v1/networks',
      '/api/v1/networks/{idOrName}',
      '/api/v1/instances',
      '/api/v1/instances/bulk',
      '/api/v1/instances/{idOrName}',
      '/api/v1/routers',
      '/api/v1/routers/{idOrName}',
      '/api/v1/pools',
      '/api/v1/metrics',
    ]) {
      expect(paths).toContain(p);
    }
    expect(Object.keys(res.body.paths['/api/v1/routers/{idOrName}'] as object)).toEqual(
      expect.arrayContaining(['get', 'patch', 'delete']),
    );
  });
});

describe('404', () => {
  it('answers 404 with the error body for unknown ids and names', async () => {
    const uuid = '00000000-0000-4000-8000-000000000000';
    for (const kind of ['hosts', 'networks', 'instances', 'routers']) {
      for (const ref of ['no-such-thing', uuid]) {
        const res = await t.get(`/${kind}/${ref}`);
        expectErrorBody(res, 404);
        expect(res.body.error).toBe('Not Found');
        expect(res.body.message).toContain(ref);
        expectErrorBody(await t.del(`/${kind}/${ref}`), 404);
      }
    }
    expectErrorBody(await t.get('/hosts/no-such-thing/desired-state'), 404);
    expectErrorBody(await t.patch(`/instances/${uuid}`, { host: host.name }), 404);
    expectErrorBody(await t.patch(`/instances/${inst.name}`, { host: 'no-such-host' }), 404);
    expectErrorBody(
      await t.post('/instances', { name: 'i404', network: 'no-such-net', host: host.name }),
      404,
    );
    expectErrorBody(
      await t.post('/instances', { name: 'i404', network: net.name, host: 'no-such-host' }),
      404,
    );
    expectErrorBody(await t.get('/instances?network=no-such-net'), 404);
    await t.get('/instances/i404').expect(404);
  });

  it('answers 404 with the error body for unknown routes', async () => {
    for (const res of [
      await t.get('/no-such-route'),
      await t.post('/no-such-route', { a: 1 }),
      await request(t.url).get('/api/v2/hosts').set('authorization', `Bearer ${ADMIN_TOKEN}`),
    ]) {
      expectErrorBody(res, 404);
      expect(res.body.error).toBe('Not Found');
    }
  });

  it('answers 405 with Allow for a method a known path does not have', async () => {
    const res = await t.del('/hosts');
    expectErrorBody(res, 405);
    expect(res.headers.allow).toMatch(/GET/);
  });
});

describe('400 for malformed and invalid bodies', () => {
  const postRaw = (raw: string) =>
    request(t.url)
      .post('/api/v1/hosts')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .set('content-type', 'application/json')
      .send(raw);

  it('answers malformed JSON with 400 and the JSON error body', async () => {
    for (const raw of ['{"name": "x",', '{name: x}', 'not json at all', '{"a":1}}']) {
      const res = await postRaw(raw);
      expectErrorBody(res, 400);
      expect(res.body.details).toBeUndefined();
    }
    const h = await t.newHost();
    expect(h.name).toBeTruthy();
  });

  it('answers a body over the limit with 413 and keeps serving', async () => {
    const before = await count('hosts');
    const big = JSON.stringify({
      name: 'big',
      underlayIp: '192.0.2.240',
      labels: { a: 'x'.repeat(3_000_000) },
    });
    expect(big.length).toBeGreaterThan(2 * 1024 * 1024);
    const res = await request(t.url)
      .post('/api/v1/hosts')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`)
      .set('content-type', 'application/json')
      .send(big);
    expectErrorBody(res, 413);
    expect(await count('hosts')).toBe(before);
    // The process is alive and serves the next requests, reads and writes.
    await t.get('/health', '').expect(200);
    await t.get('/hosts').expect(200);
    const h = await t.newHost();
    await t.del(`/hosts/${h.name}`).expect(200);
    // Just under the limit is not a 413 (it fails validation instead: a label value is too long).
    const under = JSON.stringify({
      name: 'big',
      underlayIp: '192.0.2.240',
      labels: { a: 'x'.repeat(1_000_000) },
    });
    expectErrorBody(await t.post('/hosts', JSON.parse(under)), 400);
  });

  it('uses the same `error` text for a status wherever the error comes from', async () => {
    // Validation, Nest and database errors say "Bad Request", "Not Found", "Conflict":
    // errors raised while Fastify parses the body must read the same way.
    const validation = await t.post('/hosts', {});
    expect(validation.body.error).toBe('Bad Request');
    const malformed = await postRaw('{"name": ');
    const tooLarge = await postRaw(JSON.stringify({ pad: 'x'.repeat(3_000_000) }));
    expect([malformed.status, tooLarge.status]).toEqual([400, 413]);
    expect({ malformed: malformed.body.error, tooLarge: tooLarge.body.error }).toEqual({
      malformed: 'Bad Request',
      tooLarge: 'Payload Too Large',
    });
  });

  it('names every field of the wrong type', async () => {
    const net400 = await t.post('/networks', {
      name: 'n-types',
      model: 'bridge',
      cidr: '10.33.0.0/24',
      mtu: 'x',
    });
    expectErrorBody(net400, 400);
    expect(fieldsOf(net400)).toEqual(['mtu']);
    expect(net400.body.message).toContain('mtu');

    const host400 = await t.post('/hosts', {
      name: 42,
      underlayIp: ['192.0.2.9'],
      asn: 1.5,
      labels: ['a'],
      uplink: {},
    });
    expectErrorBody(host400, 400);
    expect(fieldsOf(host400)).toEqual(['asn', 'labels', 'name', 'underlayIp', 'uplink']);
    for (const d of host400.body.details as { field: string; errors: unknown }[]) {
      expect(Array.isArray(d.errors)).toBe(true);
    }

    const many = await t.post('/networks', {
      name: 'n-types2',
      model: 'bridge',
      cidr: ['10.34.0.0/24'],
      gateway: 7,
      mtu: 1500.5,
    });
    expectErrorBody(many, 400);
    expect(fieldsOf(many)).toEqual(['cidr', 'gateway', 'mtu']);

    const inst400 = await t.post('/instances', {
      name: 'i-types',
      network: { id: net.id },
      host: [host.name],
      ip: 10,
    });
    expectErrorBody(inst400, 400);
    expect(fieldsOf(inst400)).toEqual(['host', 'ip', 'network']);

    const router400 = await t.post('/routers', { name: 'r-types', networks: { a: 1 } });
    expectErrorBody(router400, 400);
    expect(fieldsOf(router400)).toEqual(['networks']);

    // Arrays (or scalars) where an object is expected.
    const bulkItems = await t.post('/instances/bulk', {
      instances: [['x'], 'y', { name: 'ok-1', network: net.name, host: host.name }],
    });
    expectErrorBody(bulkItems, 400);
    const bf = fieldsOf(bulkItems);
    expect(bf.some((f) => f.startsWith('instances[0]') || f === 'instances')).toBe(true);
    expect(bf.some((f) => f.startsWith('instances[1]') || f === 'instances')).toBe(true);
    const bulkObj = await t.post('/instances/bulk', { instances: { name: 'x' } });
    expectErrorBody(bulkObj, 400);
    expect(fieldsOf(bulkObj)).toContain('instances');

    for (const p of ['/hosts', '/networks', '/instances', '/routers', '/instances/bulk']) {
      const res = await t.post(p, [{ name: 'array-body' }]);
      expectErrorBody(res, 400);
    }
    expect(
      await sql(t.databaseUrl, "SELECT name FROM networks WHERE name IN ('n-types', 'n-types2')"),
    ).toEqual([]);
    await t.get('/instances/i-types').expect(404);
  });

  it('names invalid values the issue lists', async () => {
    const res = await t.post('/networks', {
      name: '-bad',
      model: 'mesh',
      cidr: '10.35.0.1/24',
    });
    expectErrorBody(res, 400);
    expect(fieldsOf(res)).toEqual(['cidr', 'model', 'name']);
    const vlan = await t.post('/networks', {
      name: 'v',
      model: 'vlan',
      cidr: '10.35.0.0/24',
      vlanId: 4095,
    });
    expect(fieldsOf(vlan)).toEqual(['vlanId']);
    const vni = await t.post('/networks', {
      name: 'v',
      model: 'overlay',
      cidr: '10.35.0.0/24',
      vni: 16777216,
    });
    expect(fieldsOf(vni)).toEqual(['vni']);
    const params = await t.post('/networks', {
      name: 'v',
      model: 'bridge',
      cidr: '10.35.0.0/24',
      vni: 5000,
      vlanId: 200,
      routing: 'bgp',
    });
    expectErrorBody(params, 400);
    expect(fieldsOf(params)).toEqual(['routing', 'vlanId', 'vni']);
    const outside = await t.post('/instances', {
      name: 'i-out',
      network: net.name,
      host: host.name,
      ip: '10.99.0.5',
    });
    expectErrorBody(outside, 400);
    expect(fieldsOf(outside)).toEqual(['ip']);
    const mcast = await t.post('/instances', {
      name: 'i-mc',
      network: net.name,
      host: host.name,
      mac: '01:00:5e:00:00:01',
    });
    expectErrorBody(mcast, 400);
    expect(fieldsOf(mcast)).toEqual(['mac']);
    await t.get('/instances/i-out').expect(404);
    await t.get('/instances/i-mc').expect(404);
  });

  it('refuses unknown properties with 400 naming them', async () => {
    const h = await t.post('/hosts', {
      name: 'u1',
      underlayIp: '192.0.2.230',
      role: 'x',
      agentToken: 'y',
    });
    expectErrorBody(h, 400);
    expect(fieldsOf(h)).toEqual(['agentToken', 'role']);
    const n = await t.post('/networks', {
      name: 'u1',
      model: 'bridge',
      cidr: '10.36.0.0/24',
      routable: true,
    });
    expectErrorBody(n, 400);
    expect(fieldsOf(n)).toEqual(['routable']);
    const i = await t.post('/instances', {
      name: 'u1',
      network: net.name,
      host: host.name,
      state: 'active',
    });
    expect(fieldsOf(i)).toEqual(['state']);
    const b = await t.post('/instances/bulk', {
      instances: [{ name: 'u2', network: net.name, host: host.name, x: 1 }],
      y: 2,
    });
    expectErrorBody(b, 400);
    expect(fieldsOf(b)).toEqual(['instances[0].x', 'y']);
    const m = await t.patch(`/instances/${inst.name}`, { host: host.name, ip: '10.30.0.9' });
    expect(fieldsOf(m)).toEqual(['ip']);
    const r = await t.patch(`/routers/${router.name}`, { name: 'renamed' });
    expect(fieldsOf(r)).toEqual(['name']);
    for (const name of ['u1', 'u2']) {
      const rows = await sql(
        t.databaseUrl,
        'SELECT name FROM hosts WHERE name = $1 UNION ALL SELECT name FROM networks WHERE name = $1 UNION ALL SELECT name FROM instances WHERE name = $1',
        [name],
      );
      expect(rows).toHaveLength(0);
    }
  });

  it('gives every 4xx the same body shape', async () => {
    const samples = [
      [await t.get('/hosts', ''), 401],
      [await t.post('/hosts', {}, VIEWER_TOKEN), 403],
      [await t.get('/networks/nope'), 404],
      [await t.post('/hosts', { name: host.name, underlayIp: '192.0.2.222' }), 409],
      [await t.post('/networks', { name: net.name, model: 'bridge', cidr: '10.37.0.0/24' }), 409],
      [await t.del(`/networks/${net.name}`), 409],
      [await t.post('/hosts', {}), 400],
      [await t.get('/hosts?limit=abc'), 400],
    ] as const;
    for (const [res, status] of samples) expectErrorBody(res, status);
    // 409s raised by a database constraint carry their details too, in the same shape.
    const dupNet = samples[4][0];
    expect(dupNet.body.message).toContain('name');
  });
});

describe('no partial write', () => {
  it('a bulk whose third item uses an IP in use creates nothing', async () => {
    const n = await t.newNetwork('vlan', '10.40.0.0/24');
    const taken = await t.newInstance(n.name, host.name, { ip: '10.40.0.50' });
    const rev = await revision();
    const before = await count('instances');
    const res = await t.post('/instances/bulk', {
      instances: [
        { name: 'pw-1', network: n.name, host: host.name },
        { name: 'pw-2', network: n.name, host: host.name },
        { name: 'pw-3', network: n.name, host: host.name, ip: '10.40.0.50' },
        { name: 'pw-4', network: n.name, host: host.name },
      ],
    });
    expectErrorBody(res, 409);
    expect(res.body.message).toContain('10.40.0.50');
    const list = await t.get(`/instances?network=${n.name}`).expect(200);
    expect(list.body.items.map((i: { name: string }) => i.name)).toEqual([taken.name]);
    expect(await count('instances')).toBe(before);
    const rows = await sql(t.databaseUrl, "SELECT name FROM instances WHERE name LIKE 'pw-%'");
    expect(rows).toHaveLength(0);
    expect(await revision()).toBe(rev);
  });

  it('a bulk whose third item names an unknown host creates nothing (and no block)', async () => {
    const n = await t.newNetwork('routed', '10.41.0.0/24', { blockPrefixLen: 28 });
    const rev = await revision();
    const res = await t.post('/instances/bulk', {
      instances: [
        { name: 'pu-1', network: n.name, host: host.name },
        { name: 'pu-2', network: n.name, host: host.id },
        { name: 'pu-3', network: n.name, host: 'no-such-host' },
      ],
    });
    expectErrorBody(res, 404);
    expect(res.body.message).toContain('no-such-host');
    expect((await t.get(`/instances?network=${n.id}`).expect(200)).body.items).toEqual([]);
    expect(
      await sql(t.databaseUrl, "SELECT name FROM instances WHERE name LIKE 'pu-%'"),
    ).toHaveLength(0);
    expect(
      await sql(t.databaseUrl, 'SELECT cidr FROM host_blocks WHERE network_id = $1', [n.id]),
    ).toHaveLength(0);
    expect(await revision()).toBe(rev);
  });

  it('a bulk whose third item repeats a MAC in use creates nothing', async () => {
    const n = await t.newNetwork('bridge', '10.42.0.0/24');
    const taken = await t.newInstance(n.name, host.name, { mac: '02:aa:bb:cc:dd:ee' });
    const rev = await revision();
    const res = await t.post('/instances/bulk', {
      instances: [
        { name: 'pm-1', network: n.name, host: host.name },
        { name: 'pm-2', network: n.name, host: host.name },
        { name: 'pm-3', network: n.name, host: host.name, mac: taken.mac },
      ],
    });
    expectErrorBody(res, 409);
    expect(res.body.message).toContain('MAC');
    expect((await t.get(`/instances?network=${n.name}`).expect(200)).body.items).toHaveLength(1);
    expect(
      await sql(t.databaseUrl, "SELECT name FROM instances WHERE name LIKE 'pm-%'"),
    ).toHaveLength(0);
    expect(await revision()).toBe(rev);
    // The same bulk without the conflict goes through, in one revision.
    const ok = await t.post('/instances/bulk', {
      instances: [
        { name: 'pm-1', network: n.name, host: host.name },
        { name: 'pm-2', network: n.name, host: host.name },
      ],
    });
    expect(ok.status).toBe(201);
    expect(ok.body.items).toHaveLength(2);
    expect(ok.body.revision).toBe(rev + 1);
    expect(await revision()).toBe(rev + 1);
  });
});
