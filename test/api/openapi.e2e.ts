/**
 * The served OpenAPI document (`/api/docs-json`) as outside clients meet it: Redocly lint
 * with the recommended rules passes with no errors (`npm run lint:api` runs this file, and
 * writes the document to bench/results/openapi.json), the
 * document describes every operation fully, Swagger UI's own example for POST /hosts is
 * accepted, and the contract validator of test/support/contract.ts catches drift.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import request from 'supertest';
import { Contract } from '../support/contract.js';
import { startController, type TestController } from '../support/controller.js';

type Json = Record<string, any>;

const REDOCLY = join('node_modules', '.bin', 'redocly');
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

let t: TestController;
let doc: Json;
let dir: string;
beforeAll(async () => {
  t = await startController();
  const res = await request(t.url).get('/api/docs-json').expect(200);
  doc = JSON.parse(res.text) as Json;
  dir = mkdtempSync(join(tmpdir(), 'lattice-openapi-'));
  // The document as served, for other tools (code generators, Prism, Swagger UI offline).
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/openapi.json', JSON.stringify(doc, null, 2) + '\n');
});
afterAll(async () => {
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every operation of the document, with its method and path. */
function operations(): { method: string; path: string; op: Json }[] {
  return Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((method) => ({ method, path, op: item[method] as Json })),
  );
}

const schema = (name: string): Json => doc.components.schemas[name] as Json;

describe('Redocly lint (recommended rules)', () => {
  const available = existsSync(REDOCLY);
  if (!available) console.warn(`${REDOCLY} is not installed: the Redocly lint is skipped`);
  (available ? it : it.skip)('finds no errors in the served document', async () => {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, JSON.stringify(doc, null, 2));
    const run = await promisify(execFile)(
      REDOCLY,
      ['lint', file, '--config', 'redocly.yaml', '--format', 'json'],
      {
        env: {
          ...process.env,
          REDOCLY_TELEMETRY: 'off',
          REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
          REDOCLY_SUPPRESS_NOTIFICATIONS: 'true',
        },
        maxBuffer: 16 << 20,
      },
    ).catch((e: { stdout?: string; stderr?: string }) => e);
    const out = JSON.parse(run.stdout ?? '{}') as {
      totals?: { errors: number; warnings: number };
      problems?: {
        ruleId: string;
        severity: string;
        message: string;
        location: { pointer: string }[];
      }[];
    };
    expect(out.totals).toBeDefined();
    const problems = (out.problems ?? []).map(
      (p) => `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`,
    );
    expect(problems.filter((p) => p.startsWith('error'))).toEqual([]);
    // The accepted warning (README.md, "API overview"): GET /health answers no 4xx, as it
    // takes no token and no input. Anything else is new and must be looked at.
    expect(problems).toEqual([
      expect.stringMatching(/^warn operation-4xx-response at #\/paths\/~1api~1v1~1health\/get/),
    ]);
  });
});

describe('the document', () => {
  it('names the servers, the bearer scheme, the license and every tag', () => {
    expect(doc.servers).toEqual([{ url: '/', description: expect.any(String) }]);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.info.license).toMatchObject({ name: 'Apache-2.0' });
    const tags = (doc.tags as { name: string }[]).map((x) => x.name);
    for (const { op } of operations()) for (const tag of op.tags) expect(tags).toContain(tag);
  });

  it('describes every operation: id, summary, description, security, errors', () => {
    const ids = new Set<string>();
    for (const { method, path, op } of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      expect([where, typeof op.operationId]).toEqual([where, 'string']);
      expect(op.operationId).toMatch(/^[a-z][A-Za-z]+$/); // ours, not Controller_method
      expect(ids.has(op.operationId)).toBe(false);
      ids.add(op.operationId);
      expect([where, op.summary?.length > 0, op.description?.length > 0]).toEqual([
        where,
        true,
        true,
      ]);
      const statuses = Object.keys(op.responses);
      for (const status of statuses) {
        const r = op.responses[status] as Json;
        expect([where, status, r.description.length > 0]).toEqual([where, status, true]);
        // Every response has a schema; every error response the shared one.
        const content = Object.values<Json>(r.content ?? {});
        expect([where, status, content.length]).toEqual([where, status, 1]);
        if (Number(status) >= 400)
          expect(content[0].schema).toEqual({ $ref: '#/components/schemas/ErrorResponse' });
        else expect(content[0].schema).toBeDefined();
      }
      expect([where, statuses.includes('503')]).toEqual([where, true]);
      if (path === '/api/v1/health') {
        expect(op.security).toEqual([]);
        continue;
      }
      // POST /join is authenticated by a join token, everything else by an API token
      const scheme = path === '/api/v1/join' ? 'joinToken' : 'bearer';
      expect([where, op.security]).toEqual([where, [{ [scheme]: [] }]]);
      expect([where, statuses.includes('401')]).toEqual([where, true]);
      const params = (op.parameters as Json[]).map((p) => `${p.in}:${p.name}`);
      if (path.includes('{idOrName}')) {
        expect([where, params]).toEqual([where, expect.arrayContaining(['path:idOrName'])]);
        expect([where, statuses.includes('404')]).toEqual([where, true]);
      }
      if (method !== 'get') {
        expect([where, params]).toEqual([
          where,
          expect.arrayContaining(['query:wait', 'query:timeoutMs']),
        ]);
        // a join token has no read-only variant: POST /join has no 403
        const mutation = path === '/api/v1/join' ? ['400', '504'] : ['400', '403', '504'];
        expect([where, statuses]).toEqual([where, expect.arrayContaining(mutation)]);
        expect([where, statuses.includes('413')]).toEqual([where, true]);
      }
    }
    expect(ids.size).toBe(46);
  });

  it('gives wait, timeoutMs and pagination their exact rules', () => {
    const post = doc.paths['/api/v1/instances'].post as Json;
    const param = (op: Json, name: string) =>
      (op.parameters as Json[]).find((p) => p.name === name)!.schema as Json;
    expect(param(post, 'wait')).toEqual({ type: 'string', enum: ['applied'] });
    expect(param(post, 'timeoutMs')).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 600000,
    });
    for (const list of ['hosts', 'networks', 'instances', 'routers']) {
      const get = doc.paths[`/api/v1/${list}`].get as Json;
      expect(param(get, 'limit')).toMatchObject({ type: 'integer', minimum: 1, maximum: 1000 });
      expect(param(get, 'cursor')).toMatchObject({ type: 'string' });
      const page = get.responses['200'].content['application/json'].schema.$ref as string;
      expect(schema(page.split('/').pop()!).required).toEqual(['items', 'nextCursor']);
    }
    expect(param(doc.paths['/api/v1/networks'].get as Json, 'model').enum).toContain('fabric');
    expect(
      (doc.paths['/api/v1/instances'].get.parameters as Json[]).map((p) => p.name).sort(),
    ).toEqual(['cursor', 'host', 'label', 'limit', 'network']);
  });

  it('carries the constraints the server enforces in the request schemas', () => {
    const host = schema('CreateHostDto').properties;
    expect(host.asn).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 4294967295,
      nullable: true,
    });
    expect(host.name).toMatchObject({ pattern: '^[a-z0-9][a-z0-9-]{0,62}$', maxLength: 63 });
    expect(host.underlayIp).toMatchObject({ format: 'ipv4', pattern: expect.any(String) });
    expect(host.uplink.pattern).toBeDefined();
    expect(host.labels).toMatchObject({ type: 'object', maxProperties: 64 });
    const net = schema('CreateNetworkDto').properties;
    expect(net.mtu).toMatchObject({ type: 'integer', minimum: 576, maximum: 9000 });
    expect(net.vlanId).toMatchObject({ type: 'integer', minimum: 1, maximum: 4094 });
    expect(net.vni).toMatchObject({ type: 'integer', minimum: 1, maximum: 16777215 });
    expect(net.blockPrefixLen).toMatchObject({ type: 'integer', minimum: 8, maximum: 30 });
    expect(net.model.enum).toEqual(['bridge', 'vlan', 'routed', 'overlay', 'fabric']);
    expect(net.encapsulation.enum).toEqual(['vxlan', 'ipip', 'gre']);
    const cidr = new RegExp(net.cidr.pattern as string);
    expect(['10.0.0.0/8', '10.10.0.0/24', '10.0.0.0/30'].every((c) => cidr.test(c))).toBe(true);
    expect(
      ['10.0.0.0/7', '10.0.0.0/31', '010.0.0.0/24', '10.0.0.0'].some((c) => cidr.test(c)),
    ).toBe(false);
    const inst = schema('CreateInstanceDto').properties;
    const mac = new RegExp(inst.mac.pattern as string);
    expect(['02:00:0A:0a:00:05', '02-00-0a-0a-00-05'].every((m) => mac.test(m))).toBe(true);
    expect(mac.test('02:00:0a:0a:00')).toBe(false);
    expect(inst.labels).toMatchObject({ type: 'object', maxProperties: 64 });
    const update = schema('UpdateInstanceDto');
    expect(Object.keys(update.properties).sort()).toEqual(['host', 'labels']);
    expect(update.required).toBeUndefined();
    expect(update.properties.labels).toMatchObject({ type: 'object', maxProperties: 64 });
    expect(schema('Instance').required).toContain('labels');
    expect(schema('BulkCreateInstancesDto').properties.instances).toMatchObject({
      minItems: 1,
      maxItems: 1000,
    });
    expect(schema('UpdateRouterDto').properties.attach).toMatchObject({ maxItems: 256 });
  });

  it('answers every success with a schema of its own', () => {
    const success = (path: string, method: string, status: string) =>
      doc.paths[path][method].responses[status].content as Json;
    expect(success('/api/v1/hosts', 'post', '201')['application/json'].schema.$ref).toMatch(
      /HostWithAgentToken$/,
    );
    expect(schema('HostWithAgentToken').required).toEqual(
      expect.arrayContaining(['agentToken', 'agent', 'inSync', 'revision']),
    );
    expect(success('/api/v1/metrics', 'get', '200')).toEqual({
      'text/plain': { schema: expect.objectContaining({ type: 'string' }) },
    });
    expect(schema('Deleted').required).toEqual(['id', 'name', 'deleted', 'revision']);
  });

  it("accepts Swagger UI's own example for POST /hosts", async () => {
    // What Swagger UI's "Try it out" sends: each property's example, else its default.
    const props = schema('CreateHostDto').properties as Record<string, Json>;
    const body = Object.fromEntries(
      Object.entries(props).map(([k, p]) => [k, p.example ?? p.default]),
    );
    expect(body).toMatchObject({ asn: expect.any(Number) });
    const res = await t.post('/hosts', body);
    expect(res.status).toBe(201);
  });
});

describe('statuses every mutating call can answer', () => {
  // Through the helpers, so the contract validator checks each against the document.
  it('413 for a body over the limit, 415 for a body that is not JSON, on any of them', async () => {
    const big = { name: 'x'.repeat(2 << 20) };
    const xml = '<host name="h"/>';
    for (const [method, path] of [
      ['post', '/hosts'],
      ['patch', '/routers/nope'],
      ['del', '/instances/nope'],
      ['post', '/hosts/nope/agent-token'],
    ] as const) {
      const send = (body: unknown) =>
        method === 'del' ? t.del(path).send(body as object) : t[method](path, body);
      expect([path, (await send(big)).status]).toEqual([path, 413]);
      expect([path, (await send(xml).set('content-type', 'application/xml')).status]).toEqual([
        path,
        415,
      ]);
    }
  });

  it('400 for wait parameters that are not the documented ones', async () => {
    const max = (doc.paths['/api/v1/hosts'].post.parameters as Json[]).find(
      (p) => p.name === 'timeoutMs',
    )!.schema.maximum as number;
    for (const q of [
      'wait=now',
      'timeoutMs=5',
      'wait=applied&timeoutMs=0',
      `wait=applied&timeoutMs=${max + 1}`,
      'wait=applied&timeoutMs=1.5',
    ]) {
      const res = await t.post(`/hosts?${q}`, { name: 'w1', underlayIp: '192.0.2.250' });
      expect([q, res.status]).toEqual([q, 400]);
    }
    // The largest documented timeout is accepted (no agent is connected: nothing to wait for).
    const res = await t.post(`/hosts?wait=applied&timeoutMs=${max}`, {
      name: 'w1',
      underlayIp: '192.0.2.250',
    });
    expect(res.status).toBe(201);
    expect(res.body.appliedInMs).toEqual(expect.any(Number));
  });
});

describe('the contract validator', () => {
  const json = (status: number, body: unknown) => ({
    status,
    type: 'application/json',
    text: JSON.stringify(body),
    body,
  });
  let name: string;
  beforeAll(async () => {
    name = ((await t.newHost()) as Json).name as string;
  });
  const error = (status: number) =>
    json(status, {
      statusCode: status,
      error: 'x',
      message: 'y',
      details: [{ field: 'a', errors: ['b'] }],
    });

  it('accepts what the server answers', async () => {
    const c = new Contract(doc);
    const host = await t.get(`/hosts/${name}`).expect(200);
    c.check('GET', `/api/v1/hosts/${name}`, json(200, host.body));
    c.check('GET', '/api/v1/hosts/nope', error(404));
    c.check('GET', '/api/v1/no-such-path', error(404));
    c.check('GET', '/api/v1/metrics', { status: 200, type: 'text/plain', text: '# x\n', body: {} });
    expect(c.validated).toBe(4);
  });

  it('refuses undocumented statuses, fields, types and content types', async () => {
    const c = new Contract(doc);
    const host = (await t.get(`/hosts/${name}`).expect(200)).body as Json;
    expect(() => c.check('GET', '/api/v1/hosts/h1', error(409))).toThrow(/does not list/);
    expect(() => c.check('GET', '/api/v1/hosts/h1', json(200, { ...host, extra: 1 }))).toThrow(
      /must NOT have additional properties/,
    );
    expect(() =>
      c.check('GET', '/api/v1/hosts/h1', json(200, { ...host, agent: { ...host.agent, x: 1 } })),
    ).toThrow(/additional properties/);
    expect(() => c.check('GET', '/api/v1/hosts/h1', json(200, { ...host, asn: '1' }))).toThrow(
      /asn must be integer/,
    );
    expect(() =>
      c.check('GET', '/api/v1/hosts/h1', json(200, { ...host, createdAt: 'x' })),
    ).toThrow(/format/);
    const partial = { ...host, inSync: undefined };
    expect(() => c.check('GET', '/api/v1/hosts/h1', json(200, partial))).toThrow(/inSync/);
    expect(() =>
      c.check('GET', '/api/v1/hosts/h1', { status: 200, type: 'text/html', text: '', body: {} }),
    ).toThrow(/content type/);
    expect(() =>
      c.check(
        'GET',
        '/api/v1/hosts/nope',
        json(404, { statusCode: 400, error: 'x', message: 'y' }),
      ),
    ).toThrow(/error body says 400/);
    expect(() => c.check('GET', '/api/v1/no-such-path', error(500))).toThrow(/no such operation/);
    // POST /instances/bulk is its own operation, not POST /instances/{idOrName}.
    expect(() =>
      c.check('POST', '/api/v1/instances/bulk', json(201, { items: [], revision: 1 })),
    ).not.toThrow();
    expect(c.validated).toBe(1);
  });
});
