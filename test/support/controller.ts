import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import request from 'supertest';
import { createController, type Controller } from '../../apps/controller/src/app.js';
import { loadConfig, type Config } from '../../apps/controller/src/config/config.js';
import { contractCheck, loadContract } from './contract.js';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';
export const VIEWER_TOKEN = 'test-viewer-token-0123456789';

/** A fresh database on the run's PostgreSQL server (see global-setup.cts). */
export async function createTestDatabase(): Promise<string> {
  const base = process.env.TEST_DATABASE_URL;
  if (!base) throw new Error('TEST_DATABASE_URL is not set: run the tests through `npm test`');
  const name = `lattice_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return url.toString();
}

export interface TestController {
  readonly controller: Controller;
  readonly url: string;
  readonly databaseUrl: string;
  readonly dataDir: string;
  /** supertest bound to the controller, with the admin token. */
  get(path: string, token?: string): request.Test;
  post(path: string, body?: unknown, token?: string): request.Test;
  patch(path: string, body?: unknown, token?: string): request.Test;
  del(path: string, token?: string): request.Test;
  close(): Promise<void>;
  /** Test data factories, with unique names. */
  newHost(extra?: Record<string, unknown>): Promise<any>;
  newNetwork(model: string, cidr: string, extra?: Record<string, unknown>): Promise<any>;
  newInstance(network: string, host: string, extra?: Record<string, unknown>): Promise<any>;
}

let seq = 0;
const unique = (p: string) => `${p}${process.pid % 1000}-${++seq}`;

/**
 * Starts a real controller on a real PostgreSQL, listening on 127.0.0.1 with a free port.
 * `databaseUrl`/`dataDir` reuse those of an earlier controller (restart tests). Tokens are
 * ADMIN_TOKEN/VIEWER_TOKEN unless `env` sets them (or their `_FILE` variants); with
 * `LATTICE_TLS_*` in `env` the URL is https and requests trust `ca`.
 */
export async function startController(
  opts: {
    databaseUrl?: string;
    dataDir?: string;
    env?: Record<string, string>;
    port?: number;
    ca?: string | Buffer;
  } = {},
): Promise<TestController> {
  const databaseUrl = opts.databaseUrl ?? (await createTestDatabase());
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'lattice-ctl-'));
  const loaded = loadConfig({ LATTICE_LOG_LEVEL: 'error', ...opts.env });
  const config: Config = {
    ...loaded,
    databaseUrl,
    dataDir,
    port: 0,
    host: '127.0.0.1',
    adminToken: loaded.adminToken ?? ADMIN_TOKEN,
    viewerToken: loaded.viewerToken ?? VIEWER_TOKEN,
  };
  const adminToken = config.adminToken!;
  const controller = await createController(config);
  await controller.app.listen({ port: opts.port ?? 0, host: '127.0.0.1' });
  const url = (await controller.app.getUrl()).replace('[::1]', '127.0.0.1');
  await loadContract(url, opts.ca);
  // Every response is validated against the served OpenAPI document (contract.ts).
  const auth = (t: request.Test, token: string) => {
    if (opts.ca !== undefined) t.ca(opts.ca);
    const u = new URL(t.url);
    t.expect(contractCheck(t.method, u.pathname + u.search));
    return token ? t.set('authorization', `Bearer ${token}`) : t;
  };
  const api = `/api/v1`;
  let hostN = 0;
  const self: TestController = {
    controller,
    url,
    databaseUrl,
    dataDir,
    get: (p, token = adminToken) => auth(request(url).get(api + p), token),
    post: (p, body, token = adminToken) =>
      auth(request(url).post(api + p), token).send(body as object),
    patch: (p, body, token = adminToken) =>
      auth(request(url).patch(api + p), token).send(body as object),
    del: (p, token = adminToken) => auth(request(url).delete(api + p), token),
    async close() {
      await controller.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    async newHost(extra = {}) {
      hostN++;
      const res = await self.post('/hosts', {
        name: unique('h'),
        underlayIp: `192.0.2.${hostN}`,
        ...extra,
      });
      if (res.status !== 201) throw new Error(`newHost: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async newNetwork(model, cidr, extra = {}) {
      const res = await self.post('/networks', { name: unique('n'), model, cidr, ...extra });
      if (res.status !== 201)
        throw new Error(`newNetwork: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async newInstance(network, host, extra = {}) {
      const res = await self.post('/instances', { name: unique('i'), network, host, ...extra });
      if (res.status !== 201)
        throw new Error(`newInstance: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
  };
  return self;
}

/** Direct SQL on a test database, for checking what the API left behind. */
export async function sql<T = any>(
  databaseUrl: string,
  text: string,
  params: unknown[] = [],
): Promise<T[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}
