import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startEmbeddedPostgres,
  type EmbeddedDatabase,
} from '../../apps/controller/src/database/embedded-postgres.js';
import { startController, type TestController } from '../support/controller.js';

/** A PostgreSQL of this test's own, so that it can be stopped under a running controller. */
const dir = mkdtempSync(join(tmpdir(), 'lattice-dbdown-'));
let db: EmbeddedDatabase;
let t: TestController;

beforeAll(async () => {
  db = await startEmbeddedPostgres({ dataDir: dir });
  t = await startController({ databaseUrl: db.url });
});
afterAll(async () => {
  await t.close().catch(() => undefined);
  await db.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('database outage', () => {
  it('answers 503 while PostgreSQL is down and recovers when it is back', async () => {
    await t.post('/hosts', { name: 'before', underlayIp: '192.0.2.10' }).expect(201);
    await db.stop();

    const health = await t.get('/health', '').expect(503);
    expect(health.body).toMatchObject({ statusCode: 503, error: 'Service Unavailable' });
    const list = await t.get('/hosts').expect(503);
    expect(list.body).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'the database is unreachable',
    });
    await t.post('/hosts', { name: 'during', underlayIp: '192.0.2.11' }).expect(503);

    db = await startEmbeddedPostgres({ dataDir: dir, port: db.port });
    await t.get('/health', '').expect(200);
    await t.post('/hosts', { name: 'after', underlayIp: '192.0.2.12' }).expect(201);
    const names = (await t.get('/hosts').expect(200)).body.items.map(
      (h: { name: string }) => h.name,
    );
    expect(names).toEqual(['after', 'before']);
  });
});
