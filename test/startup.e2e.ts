import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { createController, type Controller } from '../apps/controller/src/app.js';
import { loadConfig } from '../apps/controller/src/config/config.js';
import { MIGRATIONS } from '../apps/controller/src/database/data-source.js';

/**
 * The `npm start` path: no DATABASE_URL, so the controller runs its own embedded
 * PostgreSQL under the data directory, generates and stores an admin token, and on a
 * restart finds everything where it left it.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'lattice-start-'));
let running: Controller | undefined;
afterAll(async () => {
  await running?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function start() {
  const config = {
    ...loadConfig({ LATTICE_DATA_DIR: dataDir, LATTICE_LOG_LEVEL: 'error' }),
    port: 0,
    host: '127.0.0.1',
  };
  expect(config.databaseUrl).toBeUndefined();
  const c = await createController(config);
  await c.app.listen({ port: 0, host: '127.0.0.1' });
  running = c;
  return { c, url: (await c.app.getUrl()).replace('[::1]', '127.0.0.1') };
}

async function stop() {
  await running?.close();
  running = undefined;
}

describe('start-up on an embedded PostgreSQL', () => {
  it('starts, generates the admin token once, and keeps everything across a restart', async () => {
    const first = await start();
    expect(first.c.embedded).toBeDefined();
    expect(first.c.adminTokenCreated).toBe(true);
    const tokenFile = join(dataDir, 'admin-token');
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(first.c.adminToken);
    expect(statSync(tokenFile).mode & 0o077).toBe(0);
    expect(existsSync(join(dataDir, 'pg', 'PG_VERSION'))).toBe(true);
    const auth = { authorization: `Bearer ${first.c.adminToken}` };
    await request(first.url)
      .get('/api/v1/health')
      .expect(200, { status: 'ok', database: 'up', revision: 0 });
    const host = await request(first.url)
      .post('/api/v1/hosts')
      .set(auth)
      .send({ name: 'keep', underlayIp: '192.0.2.50' })
      .expect(201);
    const net = await request(first.url)
      .post('/api/v1/networks')
      .set(auth)
      .send({ name: 'keepnet', model: 'overlay', cidr: '10.0.0.0/24' })
      .expect(201);
    await stop();

    const second = await start();
    expect(second.c.adminTokenCreated).toBe(false);
    expect(second.c.adminToken).toBe(first.c.adminToken);
    expect(
      (await request(second.url).get('/api/v1/hosts/keep').set(auth).expect(200)).body.id,
    ).toBe(host.body.id);
    expect(
      (await request(second.url).get('/api/v1/networks/keepnet').set(auth).expect(200)).body.vni,
    ).toBe(net.body.vni);
    const next = await request(second.url)
      .post('/api/v1/hosts')
      .set(auth)
      .send({ name: 'after', underlayIp: '192.0.2.51' })
      .expect(201);
    expect(next.body.revision).toBeGreaterThan(net.body.revision);
    // migrations ran once: a restart applies none and the schema is intact
    const [{ n }] = await second.c.dataSource.query('SELECT count(*)::int AS n FROM migrations');
    expect(n).toBe(MIGRATIONS.length);
  });
});
