import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import pg from 'pg';
import { DesiredStateService } from '../../apps/controller/src/desired-state/desired-state.service.js';
import { RevisionListener } from '../../apps/controller/src/desired-state/revision-listener.js';
import {
  COMPACTION_LOCK,
  CompactionService,
} from '../../apps/controller/src/revisions/compaction.service.js';
import { sql, startController, type TestController } from '../support/controller.js';

/**
 * Revision log compaction: the oldest revisions beyond the newest RETENTION ones (and past
 * the minimum age) go, in batches; numbering continues without a gap; a replica that fell
 * behind what the log keeps recomputes and ends with the same desired state.
 */
const RETENTION = 5;
const ENV = { LATTICE_REVISION_RETENTION: String(RETENTION), LATTICE_REVISION_MIN_AGE_MS: '0' };
let a: TestController;
let b: TestController;
const hosts: any[] = [];
let net: any;

const byKey = (rs: { key: string }[]) => [...rs].sort((x, y) => (x.key < y.key ? -1 : 1));

async function log(databaseUrl = a.databaseUrl) {
  const [r] = await sql<{ n: number; min: string; max: string }>(
    databaseUrl,
    'SELECT count(*)::int AS n, min(revision) AS min, max(revision) AS max FROM revisions',
  );
  return { n: r.n, min: Number(r.min), max: Number(r.max) };
}

async function expectSameDesiredState(x: TestController, y: TestController) {
  for (const h of hosts) {
    const want = (await x.get(`/hosts/${h.name}/desired-state`).expect(200)).body;
    const got = (await y.get(`/hosts/${h.name}/desired-state`).expect(200)).body;
    expect({ h: h.name, revision: got.revision, resources: byKey(got.resources) }).toEqual({
      h: h.name,
      revision: want.revision,
      resources: byKey(want.resources),
    });
  }
}

/** Replica b no longer hears other replicas' commits: it falls behind until it reads. */
async function deafen(t: TestController) {
  await t.controller.app.get(RevisionListener).onModuleDestroy();
}

beforeAll(async () => {
  a = await startController({ env: ENV });
  b = await startController({ env: ENV, databaseUrl: a.databaseUrl });
  await deafen(b);
  for (let i = 0; i < 3; i++) hosts.push(await a.newHost());
  net = await a.newNetwork('overlay', '10.70.0.0/24');
  // b is told of the hosts and the network (and is then left behind)
  await expectSameDesiredState(a, b);
  // one revision per request (sequential: no group commit)
  for (let i = 0; i < 30; i++) await a.newInstance(net.name, hosts[i % 3].name);
});

afterAll(async () => {
  await b?.close();
  await a?.close();
});

describe('revision log compaction', () => {
  it('keeps the newest revisions and numbers the next one max + 1', async () => {
    const before = await log();
    expect(before.n).toBe(before.max); // nothing compacted yet: 1…max
    expect(before.max).toBeGreaterThanOrEqual(34);

    // batches of 7: several statements
    const deleted = await a.controller.app.get(CompactionService).compact(7);
    expect(deleted).toBe(before.max - RETENTION);
    expect(await log()).toEqual({ n: RETENTION, min: before.max - RETENTION + 1, max: before.max });
    expect(await a.controller.app.get(CompactionService).compact()).toBe(0);

    const i = await a.newInstance(net.name, hosts[0].name);
    expect(i.revision).toBe(before.max + 1);
    expect(await log()).toEqual({
      n: RETENTION + 1,
      min: before.max - RETENTION + 1,
      max: before.max + 1,
    });

    const metrics = (await a.get('/metrics').expect(200)).text;
    expect(metrics).toMatch(
      new RegExp(`^lattice_revisions_compacted_total ${before.max - RETENTION}$`, 'm'),
    );
    expect(metrics).toMatch(
      new RegExp(`^lattice_revision_oldest ${before.max - RETENTION + 1}$`, 'm'),
    );
  });

  it('a replica behind the retained log recomputes and converges', async () => {
    const desired = b.controller.app.get(DesiredStateService);
    const behind = desired.currentRevision;
    const { min, max } = await log();
    expect(behind).toBeLessThan(min - 1); // what b would need next is gone
    const warn = jest.spyOn((desired as any).log, 'warn');
    try {
      await expectSameDesiredState(a, b);
      expect(desired.currentRevision).toBe(max);
      expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([
        expect.stringMatching(new RegExp(`revision log gap after ${behind} \\(next is ${min}\\)`)),
      ]);
      // it writes on top of the newest revision, and a hears it
      const i = await b.newInstance(net.name, hosts[1].name);
      expect(i.revision).toBe(max + 1);
      await expectSameDesiredState(b, a);
    } finally {
      warn.mockRestore();
    }
  });

  it('a replica behind, but within the retained log, catches up from the log', async () => {
    const desired = b.controller.app.get(DesiredStateService);
    const behind = desired.currentRevision;
    await a.newInstance(net.name, hosts[2].name);
    await a.newInstance(net.name, hosts[0].name);
    await a.controller.app.get(CompactionService).compact();
    const { min, max } = await log();
    expect(behind).toBeGreaterThanOrEqual(min - 1);
    expect(desired.currentRevision).toBe(behind);
    const warn = jest.spyOn((desired as any).log, 'warn');
    try {
      await expectSameDesiredState(a, b);
      expect(desired.currentRevision).toBe(max);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('keeps revisions younger than the minimum age, and deletes only a prefix', async () => {
    // a replica with the default minimum age (10 minutes) and the smallest retention
    const c = await startController({
      env: { LATTICE_REVISION_RETENTION: '1' },
      databaseUrl: a.databaseUrl,
    });
    try {
      for (let i = 0; i < 6; i++) await a.newInstance(net.name, hosts[i % 3].name);
      const before = await log();
      expect(await c.controller.app.get(CompactionService).compact()).toBe(0);
      expect(await log()).toEqual(before);

      // the first three are old, the fourth young, the fifth old again: the first three go
      await sql(
        a.databaseUrl,
        `UPDATE revisions SET committed_at = now() - interval '1 hour'
          WHERE revision < $1::bigint + 3 OR revision = $1::bigint + 4`,
        [before.min],
      );
      expect(await c.controller.app.get(CompactionService).compact()).toBe(3);
      expect(await log()).toEqual({ n: before.n - 3, min: before.min + 3, max: before.max });
    } finally {
      await c.close();
    }
  });

  it('does nothing while another replica holds the compaction lock', async () => {
    for (let i = 0; i < 3; i++) await a.newInstance(net.name, hosts[i % 3].name);
    const before = await log();
    expect(before.n).toBeGreaterThan(RETENTION);
    const other = new pg.Client({ connectionString: a.databaseUrl });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1)', [COMPACTION_LOCK]);
      expect(await a.controller.app.get(CompactionService).compact()).toBe(0);
      expect(await log()).toEqual(before);
      await other.query('SELECT pg_advisory_unlock($1)', [COMPACTION_LOCK]);
      expect(await a.controller.app.get(CompactionService).compact()).toBe(before.n - RETENTION);
    } finally {
      await other.end();
    }
  });

  it('two replicas compacting at once leave the same log as one', async () => {
    for (let i = 0; i < 8; i++) await a.newInstance(net.name, hosts[i % 3].name);
    const before = await log();
    const [x, y] = await Promise.all([
      a.controller.app.get(CompactionService).compact(1),
      b.controller.app.get(CompactionService).compact(1),
    ]);
    const after = await log();
    expect(after).toEqual({ n: RETENTION, min: before.max - RETENTION + 1, max: before.max });
    expect(x + y).toBe(before.n - RETENTION);
  });

  it('a database error is logged, not thrown out of the timer, and the next pass works', async () => {
    // a database of its own, which stops taking connections under the controller
    const c = await startController({ env: ENV });
    const name = new URL(c.databaseUrl).pathname.slice(1);
    const admin = process.env.TEST_DATABASE_URL!;
    const compaction = c.controller.app.get(CompactionService);
    const warn = jest.spyOn((compaction as any).log, 'warn').mockImplementation(() => undefined);
    try {
      const h = await c.newHost();
      const n = await c.newNetwork('bridge', '10.71.0.0/24');
      for (let i = 0; i < RETENTION + 3; i++) await c.newInstance(n.name, h.name);
      await sql(admin, `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS false`);
      await sql(
        admin,
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      await expect(compaction.compact()).rejects.toBeDefined();
      await (compaction as any).tick(); // what the interval runs: resolves
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0][0])).toMatch(/revision log not compacted/);
      expect(compaction.stats().failures).toBe(1);

      await sql(admin, `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`);
      const held = (await log(c.databaseUrl)).n;
      expect(await compaction.compact()).toBe(held - RETENTION);
      expect((await log(c.databaseUrl)).n).toBe(RETENTION);
    } finally {
      warn.mockRestore();
      await sql(admin, `ALTER DATABASE ${name} WITH ALLOW_CONNECTIONS true`);
      await c.close();
    }
  });
});
