/**
 * No input reaches a 500, and every refusal says what is wrong in the API's own words
 * (issue 10): NUL bytes, unpaired surrogates and invalid UTF-8 anywhere in a request are a
 * 400 naming the field (a 404 for a path lookup) before PostgreSQL sees them; a method a
 * path does not have is a 405 with `Allow`; a body that is not JSON is a 415, one that is
 * not a JSON object one 400 saying so; each invalid field gets one message; 409s name the
 * object and field, never a constraint or PostgreSQL's detail.
 *
 * Every request goes through the real server, and every answer is validated against the
 * served OpenAPI document (test/support/contract.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { loadContract, type Contract } from '../support/contract.js';
import {
  ADMIN_TOKEN,
  VIEWER_TOKEN,
  sql,
  startController,
  type TestController,
} from '../support/controller.js';

type Json = Record<string, any>;

let t: TestController;
let contract: Contract;
let host: Json;
let net: Json;
let routed: Json;
let inst: Json;
let router: Json;

beforeAll(async () => {
  t = await startController();
  contract = await loadContract(t.url);
  host = await t.newHost();
  net = await t.newNetwork('bridge', '10.60.0.0/24');
  routed = await t.newNetwork('routed', '10.61.0.0/24');
  inst = await t.newInstance(net.name, host.name);
  router = (await t.post('/routers', { name: 'hd-r1' }).expect(201)).body;
});
afterAll(() => t?.close());

interface Answer {
  status: number;
  type: string;
  text: string;
  body: any;
  headers: Headers;
}

/**
 * Sends exactly what it is given (`path` already percent-encoded, `body` as text or bytes,
 * with `type` as its content type; `null`: no content type), with the admin token unless
 * told, and checks the answer against the document.
 */
async function send(
  method: string,
  path: string,
  o: { body?: string | Uint8Array | object; type?: string | null; token?: string | null } = {},
): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = o.token === undefined ? ADMIN_TOKEN : o.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let body: string | Uint8Array | undefined;
  if (o.body !== undefined) {
    body =
      typeof o.body === 'string' || o.body instanceof Uint8Array ? o.body : JSON.stringify(o.body);
    if (o.type !== null) headers['content-type'] = o.type ?? 'application/json';
  }
  const url = new URL(`/api/v1${path}`, t.url);
  const res = await fetch(url, { method, headers, body });
  const text = await res.text();
  const type = (res.headers.get('content-type') ?? '').split(';')[0].trim();
  const answer = {
    status: res.status,
    type,
    text,
    body: type === 'application/json' ? JSON.parse(text) : text,
    headers: res.headers,
  };
  contract.check(method, url.pathname + url.search, answer);
  return answer;
}

/** The error body, with `status`. */
function expectError(res: Answer, status: number): Json {
  expect({ status: res.status, body: res.body }).toMatchObject({
    status,
    body: { statusCode: status, error: expect.any(String), message: expect.any(String) },
  });
  return res.body as Json;
}

/** A 400 naming exactly `fields`, each with one message. */
function expectFields(res: Answer, fields: string[]): Json[] {
  const body = expectError(res, 400);
  const details = body.details as { field: string; errors: string[] }[];
  expect(details.map((d) => d.field).sort()).toEqual([...fields].sort());
  for (const d of details) expect(d.errors).toHaveLength(1);
  return details;
}

const NUL_TEXT = /must be valid Unicode text without NUL characters/;

async function count(table: string): Promise<number> {
  const [{ n }] = await sql<{ n: number }>(
    t.databaseUrl,
    `SELECT count(*)::int AS n FROM ${table}`,
  );
  return n;
}

describe('no input reaches a 500', () => {
  /** Every operation that looks an object up by its path. */
  const lookups = (ref: string): [string, string, object?][] => [
    ['GET', `/hosts/${ref}`],
    ['PATCH', `/hosts/${ref}`, { uplink: 'eth1' }],
    ['DELETE', `/hosts/${ref}`],
    ['GET', `/hosts/${ref}/desired-state`],
    ['POST', `/hosts/${ref}/agent-token`],
    ['GET', `/networks/${ref}`],
    ['DELETE', `/networks/${ref}`],
    ['GET', `/instances/${ref}`],
    ['PATCH', `/instances/${ref}`, { host: 'x' }],
    ['DELETE', `/instances/${ref}`],
    ['GET', `/routers/${ref}`],
    ['PATCH', `/routers/${ref}`, { attach: [] }],
    ['DELETE', `/routers/${ref}`],
  ];

  it('answers a NUL byte in a path with 404 on every lookup', async () => {
    for (const ref of ['%00', 'a%00b', `${host.name}%00`, '%00'.repeat(30)]) {
      for (const [method, path, body] of lookups(ref)) {
        const res = await send(method, path, { body });
        expect({ method, path, status: res.status }).toEqual({ method, path, status: 404 });
        expect(res.body.message).toMatch(/names nothing/);
      }
    }
    await t.get(`/hosts/${host.name}`).expect(200);
  });

  it('answers a path that is not valid UTF-8, or too long for any name, with 404', async () => {
    // Lone bytes, an overlong NUL, an encoded surrogate, a truncated sequence.
    for (const ref of ['%FF', 'a%C0%80', '%ED%A0%80', '%E2%82', 'h1%FE', 'x'.repeat(101)]) {
      for (const [method, path, body] of lookups(ref)) {
        const res = await send(method, path, { body });
        expect({ method, path, status: res.status }).toEqual({ method, path, status: 404 });
        expect(res.body.message).toMatch(/names nothing/);
      }
    }
    expectError(await send('GET', '/%FF'), 404);
  });

  it('refuses a NUL or an unpaired surrogate in a name with 400 naming it', async () => {
    const before = await count('hosts');
    for (const name of ['a\u0000', '\u0000', 'h\ud800', 'x\udc00y']) {
      expect(
        expectFields(await send('POST', '/hosts', { body: { name, underlayIp: '192.0.2.90' } }), [
          'name',
        ])[0].errors[0],
      ).toMatch(NUL_TEXT);
      expectFields(
        await send('POST', '/networks', { body: { name, model: 'bridge', cidr: '10.62.0.0/24' } }),
        ['name'],
      );
      expectFields(
        await send('POST', '/instances', { body: { name, network: net.name, host: host.name } }),
        ['name'],
      );
      expectFields(await send('POST', '/routers', { body: { name } }), ['name']);
    }
    expect(await count('hosts')).toBe(before);
  });

  it('refuses a NUL or an unpaired surrogate in a reference with 400 naming it', async () => {
    const before = await count('instances');
    for (const bad of ['a\u0000', '\u0000', '\ud800', `${net.name}\udfff`]) {
      const one = { name: 'hd-i1', network: bad, host: host.name };
      expectFields(await send('POST', '/instances', { body: one }), ['network']);
      expectFields(
        await send('POST', '/instances', { body: { ...one, network: net.name, host: bad } }),
        ['host'],
      );
      expectFields(
        await send('POST', '/instances/bulk', {
          body: {
            instances: [
              { ...one, network: net.name },
              { ...one, name: 'hd-i2' },
            ],
          },
        }),
        ['instances[1].network'],
      );
      expectFields(await send('PATCH', `/instances/${inst.name}`, { body: { host: bad } }), [
        'host',
      ]);
      expectFields(await send('POST', '/routers', { body: { name: 'hd-r2', networks: [bad] } }), [
        'networks[0]',
      ]);
      expectFields(
        await send('PATCH', `/routers/${router.name}`, { body: { attach: [net.name, bad] } }),
        ['attach[1]'],
      );
      expectFields(await send('PATCH', `/routers/${router.name}`, { body: { detach: [bad] } }), [
        'detach[0]',
      ]);
    }
    expect(await count('instances')).toBe(before);
    await t.get('/routers/hd-r2').expect(404);
  });

  it('refuses such text in a label key or value, and names it', async () => {
    const body = (labels: object) => ({
      body: { name: 'hd-h2', underlayIp: '192.0.2.91', labels },
    });
    expect(
      expectFields(await send('POST', '/hosts', body({ 'a\u0000': 'x' })), ['labels.a\\u0000'])[0]
        .errors[0],
    ).toMatch(/key/);
    expectFields(await send('POST', '/hosts', body({ a: 'x\u0000' })), ['labels.a']);
    expectFields(
      await send('PATCH', `/hosts/${host.name}`, { body: { labels: { a: '\ud800' } } }),
      ['labels.a'],
    );
    await t.get('/hosts/hd-h2').expect(404);
  });

  it('refuses keys that reach a prototype (a `constructor` label was a 500)', async () => {
    const labels = JSON.parse('{"constructor": "x", "ok": "y"}') as object;
    expectFields(
      await send('POST', '/hosts', { body: { name: 'hd-h3', underlayIp: '192.0.2.92', labels } }),
      ['labels.constructor'],
    );
    expectFields(
      await send('POST', '/hosts', {
        body: '{"name": "hd-h3", "underlayIp": "192.0.2.92", "__proto__": {"x": 1}}',
      }),
      ['__proto__'],
    );
    expectFields(
      await send('PATCH', `/hosts/${host.name}`, { body: '{"labels": {"__proto__": "x"}}' }),
      ['labels.__proto__'],
    );
    await t.get('/hosts/hd-h3').expect(404);
  });

  it('refuses a NUL in a query value with 400 naming the parameter', async () => {
    expectFields(await send('GET', '/instances?network=%00'), ['network']);
    expectFields(await send('GET', `/instances?host=${host.name}%00`), ['host']);
    expectFields(await send('GET', '/networks?model=bridge%00'), ['model']);
    expectFields(await send('GET', '/hosts?limit=1%00'), ['limit']);
    expectFields(await send('GET', '/hosts?cursor=%00'), ['cursor']);
    expectFields(await send('GET', '/routers?%00=1'), ['\\u0000']);
    expectFields(await send('DELETE', `/routers/${router.name}?wait=applied%00`), ['wait']);
    expectFields(await send('DELETE', `/routers/${router.name}?wait=applied&timeoutMs=5%00`), [
      'timeoutMs',
    ]);
    await t.get(`/routers/${router.name}`).expect(200);
  });

  it('refuses a cursor this API did not issue, even one holding a NUL, with 400 naming it', async () => {
    const cursor = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const c of [
      cursor({ after: 'a\u0000' }),
      cursor({ after: '\ud800' }),
      cursor({ after: 'x'.repeat(5000) }),
      cursor({ after: 7 }),
      cursor(null),
      cursor([]),
      'not-base64-json',
      '%00',
    ]) {
      for (const kind of ['hosts', 'networks', 'instances', 'routers']) {
        const d = expectFields(await send('GET', `/${kind}?cursor=${encodeURIComponent(c)}`), [
          'cursor',
        ]);
        expect(d[0].errors[0]).toMatch(/not one this API issued/);
      }
    }
    // The cursors it issues still work.
    const first = await t.get('/networks?limit=1').expect(200);
    const next = await t.get(`/networks?limit=1&cursor=${first.body.nextCursor}`).expect(200);
    expect(next.body.items[0].name > first.body.items[0].name).toBe(true);
  });

  it('refuses a body that is not valid UTF-8 with 400', async () => {
    for (const bytes of [
      [0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d], // {"name":"\xff"}
      [0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d], // an encoded surrogate
      [0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x22, 0xc0, 0x80, 0x22, 0x7d], // an overlong NUL
    ]) {
      const body = expectError(await send('POST', '/hosts', { body: new Uint8Array(bytes) }), 400);
      expect(body.message).toBe('the body is not valid UTF-8');
    }
  });

  it('refuses bodies nested too deeply with one 400 (they were a 500)', async () => {
    for (const [key, n] of [
      ['labels', 20],
      ['instances', 5000],
      ['x', 50_000],
    ] as const) {
      const raw = `{"name":"hd-deep","${key}":${'[{"a":'.repeat(n)}1${'}]'.repeat(n)}}`;
      const res = await send('POST', key === 'instances' ? '/instances/bulk' : '/hosts', {
        body: raw,
      });
      const [d] = expectFields(res, [expect.stringMatching(new RegExp(`^${key}`)) as never]);
      expect(d.errors[0]).toMatch(/nests arrays and objects more than 16 levels deep/);
    }
    await t.get('/health', '').expect(200);
  });

  it('stores unicode names nowhere, but keeps serving after every refusal', async () => {
    for (const name of ['ñame', 'é', '🙂', 'İ', '\u202e']) {
      expectFields(await send('POST', '/routers', { body: { name } }), ['name']);
      expectError(await send('GET', `/routers/${encodeURIComponent(name)}`), 404);
    }
    await t.get('/hosts').expect(200);
  });
});

describe('methods and content types', () => {
  it('answers a method a path does not have with 405 and Allow', async () => {
    for (const [method, path, allow] of [
      ['PUT', '/hosts', 'GET, HEAD, POST'],
      ['DELETE', '/hosts', 'GET, HEAD, POST'],
      ['PATCH', '/networks', 'GET, HEAD, POST'],
      ['DELETE', '/pools', 'GET, HEAD'],
      ['POST', '/pools', 'GET, HEAD'],
      ['POST', '/health', 'GET, HEAD'],
      ['PUT', `/hosts/${host.name}`, 'DELETE, GET, HEAD, PATCH'],
      ['POST', `/networks/${net.name}`, 'DELETE, GET, HEAD, PATCH'],
      ['PUT', '/floating-ips/192.0.2.200', 'DELETE, GET, HEAD, PATCH'],
      ['PUT', `/routers/${router.id}`, 'DELETE, GET, HEAD, PATCH'],
      ['GET', `/hosts/${host.name}/agent-token`, 'POST'],
      ['OPTIONS', '/instances', 'GET, HEAD, POST'],
    ] as const) {
      const res = await send(method, path, { body: method === 'GET' ? undefined : { a: 1 } });
      expect({ method, path, status: res.status, allow: res.headers.get('allow') }).toEqual({
        method,
        path,
        status: 405,
        allow,
      });
      expect(expectError(res, 405)).toMatchObject({ error: 'Method Not Allowed' });
      expect(res.body.message).toContain(method);
    }
    // Before the token is looked at, and before the body is read.
    expectError(await send('PUT', '/hosts', { token: null }), 405);
    expectError(await send('PUT', '/hosts', { body: 'x', type: 'text/plain' }), 405);
    // GET /instances/bulk is GET /instances/{idOrName}: a lookup, not a wrong method.
    expectError(await send('GET', '/instances/bulk'), 404);
  });

  it('keeps 404 for paths no route has', async () => {
    for (const [method, path] of [
      ['GET', '/no-such-route'],
      ['POST', '/no-such-route'],
      ['PUT', '/no-such-route'],
      ['GET', `/hosts/${host.name}/nope`],
      ['DELETE', `/instances/${inst.name}/x/y`],
    ]) {
      expect((await send(method, path)).status).toBe(404);
    }
    const v2 = await fetch(new URL('/api/v2/hosts', t.url), {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(v2.status).toBe(404);
  });

  it('answers a body of another content type with 415, before any field is looked at', async () => {
    const before = await count('hosts');
    const json = JSON.stringify({ name: 'hd-ct', underlayIp: '192.0.2.93' });
    for (const type of [
      'text/plain',
      'text/plain; charset=utf-8',
      'application/xml',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/vnd.api+json',
      'application/octet-stream',
    ]) {
      for (const [method, path] of [
        ['POST', '/hosts'],
        ['PATCH', `/hosts/${host.name}`],
        ['DELETE', `/instances/${inst.name}`],
        ['POST', `/hosts/${host.name}/agent-token`],
      ]) {
        const body = expectError(await send(method, path, { body: json, type }), 415);
        expect(body.message).toBe(
          'the body must be JSON: send it with content-type application/json',
        );
        expect(body.details).toBeUndefined();
      }
    }
    // A body without a content type (Node's fetch would add text/plain, so raw bytes).
    expectError(
      await send('POST', '/hosts', { body: new TextEncoder().encode(json), type: null }),
      415,
    );
    expect(await count('hosts')).toBe(before);
    await t.get(`/instances/${inst.name}`).expect(200);
    // JSON with a charset, or in capitals, is JSON.
    for (const type of ['application/json; charset=utf-8', 'Application/JSON']) {
      const name = `hd-ct-${type.length}`;
      expect(
        (await send('POST', '/routers', { body: JSON.stringify({ name }), type })).status,
      ).toBe(201);
    }
  });

  it('says "the body must be a JSON object", once, for any other JSON body', async () => {
    const routes: [string, string][] = [
      ['POST', '/hosts'],
      ['PATCH', `/hosts/${host.name}`],
      ['POST', '/networks'],
      ['POST', '/instances'],
      ['POST', '/instances/bulk'],
      ['PATCH', `/instances/${inst.name}`],
      ['POST', '/routers'],
      ['PATCH', `/routers/${router.name}`],
    ];
    for (const raw of ['[]', 'null', '"x"', '1', 'true', '[{"name":"a"}]', '""']) {
      for (const [method, path] of routes) {
        const body = expectError(await send(method, path, { body: raw }), 400);
        expect({ raw, path, message: body.message, details: body.details }).toEqual({
          raw,
          path,
          message: 'the body must be a JSON object',
          details: undefined,
        });
      }
    }
    // Malformed JSON says so too; an empty JSON body is no body (its fields are missing).
    expect(expectError(await send('POST', '/hosts', { body: '{"name": ' }), 400).message).toBe(
      'the body is not valid JSON',
    );
    expectFields(await send('POST', '/hosts', { body: '' }), ['name', 'underlayIp']);
  });
});

describe('one clear message per field', () => {
  it('gives ?limit= one message, whatever is wrong with it', async () => {
    for (const limit of [
      'abc',
      '0',
      '-1',
      '1001',
      '1.5',
      '1e2',
      '',
      '+5',
      '0x10',
      '99999999999999999999',
      'limit=1&limit=2',
    ]) {
      const q = limit.startsWith('limit=') ? limit : `limit=${encodeURIComponent(limit)}`;
      for (const kind of ['hosts', 'networks', 'instances', 'routers']) {
        const [d] = expectFields(await send('GET', `/${kind}?${q}`), ['limit']);
        expect(d.errors).toEqual(['limit must be an integer from 1 to 1000']);
      }
    }
    expect((await send('GET', '/hosts?limit=1000')).status).toBe(200);
    expect((await send('GET', '/hosts?limit=01')).body.items).toHaveLength(1);
  });

  it('gives each invalid field one message, and names every one', async () => {
    const net400 = expectFields(
      await send('POST', '/networks', {
        body: {
          name: 42,
          model: 'mesh',
          cidr: ['10.0.0.0/8'],
          mtu: 'x',
          vlanId: 99999,
          vni: 1.5,
          x: 1,
        },
      }),
      ['name', 'model', 'cidr', 'mtu', 'vlanId', 'vni', 'x'],
    );
    const byField = Object.fromEntries(net400.map((d) => [d.field, d.errors[0]]));
    expect(byField).toMatchObject({
      name: 'name must be a string',
      mtu: 'mtu must be an integer from 576 to 9000',
      vlanId: 'vlanId must be an integer from 1 to 4094',
      vni: 'vni must be an integer from 1 to 16777215',
      x: 'property x should not exist',
    });
    const host400 = expectFields(
      await send('POST', '/hosts', {
        body: { name: 'A-B', underlayIp: 7, asn: 'x', labels: ['a'], uplink: {} },
      }),
      ['name', 'underlayIp', 'asn', 'labels', 'uplink'],
    );
    expect(Object.fromEntries(host400.map((d) => [d.field, d.errors[0]]))).toMatchObject({
      asn: 'asn must be an integer from 1 to 4294967295',
      labels: 'labels must be an object',
      uplink: 'uplink must be a string',
    });
    // A name of the form of a UUID is told so, whatever its case.
    const [uuid] = expectFields(
      await send('POST', '/routers', { body: { name: 'ABCDEF01-2345-6789-ABCD-EF0123456789' } }),
      ['name'],
    );
    expect(uuid.errors[0]).toMatch(/must not have the form of a UUID/);
    expectFields(
      await send('POST', '/instances/bulk', {
        body: { instances: [{ name: 1, network: [], host: 'x'.repeat(64) }, 'y'] },
      }),
      ['instances[0].name', 'instances[0].network', 'instances[0].host', 'instances[1]'],
    );
  });
});

describe('409s in the API’s words', () => {
  /** No constraint name, no PostgreSQL detail, anywhere in the body. */
  function expectOwnWords(res: Answer, details: Json | undefined): Json {
    const body = expectError(res, 409);
    expect(res.text).not.toMatch(
      /_key\b|_pkey|_no_overlap|_fkey|constraint|Key \(|violates|\bdetail\b/i,
    );
    if (details) expect(body.details).toEqual(details);
    return body;
  }

  it('names the object, the field and the value of a duplicate', async () => {
    expectOwnWords(
      await send('POST', '/hosts', { body: { name: host.name, underlayIp: '192.0.2.94' } }),
      {
        object: 'host',
        field: 'name',
        value: host.name,
      },
    );
    expectOwnWords(
      await send('POST', '/hosts', { body: { name: 'hd-dup', underlayIp: host.underlayIp } }),
      {
        object: 'host',
        field: 'underlayIp',
        value: host.underlayIp,
      },
    );
    expectOwnWords(
      await send('POST', '/networks', {
        body: { name: net.name, model: 'bridge', cidr: '10.63.0.0/24' },
      }),
      { object: 'network', field: 'name', value: net.name },
    );
    expectOwnWords(await send('POST', '/routers', { body: { name: router.name } }), {
      object: 'router',
      field: 'name',
      value: router.name,
    });
    expectOwnWords(
      await send('POST', '/instances', {
        body: { name: inst.name, network: net.name, host: host.name },
      }),
      { object: 'instance', field: 'name', value: inst.name },
    );
    const vlan = await t.newNetwork('vlan', '10.64.0.0/24');
    expectOwnWords(
      await send('POST', '/networks', {
        body: { name: 'hd-vlan', model: 'vlan', cidr: '10.65.0.0/24', vlanId: vlan.vlanId },
      }),
      undefined,
    );
    const overlap = expectOwnWords(
      await send('POST', '/networks', {
        body: { name: 'hd-overlap', model: 'routed', cidr: '10.61.0.0/16' },
      }),
      undefined,
    );
    expect(overlap.message).toMatch(/CIDR/);
  });

  it('says what is in use for IPs and MACs, and what still uses a network or host', async () => {
    expectOwnWords(
      await send('POST', '/instances', {
        body: { name: 'hd-ip', network: net.name, host: host.name, ip: inst.ip },
      }),
      undefined,
    );
    expectOwnWords(
      await send('POST', '/instances', {
        body: { name: 'hd-mac', network: net.name, host: host.name, mac: inst.mac },
      }),
      undefined,
    );
    expectOwnWords(await send('DELETE', `/networks/${net.name}`), undefined);
    expectOwnWords(await send('DELETE', `/hosts/${host.name}`), undefined);
    await t.get('/instances/hd-ip').expect(404);
    await t.get(`/networks/${routed.name}`).expect(200);
  });

  it('keeps the viewer token out before anything else is looked at', async () => {
    expectError(
      await send('POST', '/hosts', { body: { name: '\u0000' }, token: VIEWER_TOKEN }),
      403,
    );
    expectError(await send('POST', '/hosts', { body: '[]', token: null }), 401);
  });
});
