import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'supertest';
import { sql, startController, type TestController } from '../support/controller.js';

/**
 * Group commit: mutations that wait while a batch commits are committed together, yet each
 * request keeps its own meaning — it succeeds or fails alone, all or nothing, and answers
 * with the revision at which it became visible.
 */
let t: TestController;
let hosts: { id: string; name: string }[];

beforeAll(async () => {
  t = await startController();
  hosts = [];
  for (let i = 0; i < 3; i++) hosts.push(await t.newHost());
});
afterAll(() => t?.close());

/**
 * Runs `fn` with a trigger on instances that refuses names starting with `prefix` (a check
 * violation): `deferred` at COMMIT, otherwise by the INSERT itself.
 */
async function withRefusal(prefix: string, deferred: boolean, fn: () => Promise<void>) {
  const name = `gc_refuse_${deferred ? 'late' : 'now'}`;
  await sql(
    t.databaseUrl,
    `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
       IF NEW.name LIKE '${prefix}%' THEN
         RAISE EXCEPTION 'refused' USING ERRCODE = '23514', CONSTRAINT = '${name}';
       END IF;
       RETURN NEW;
     END $$`,
  );
  await sql(
    t.databaseUrl,
    deferred
      ? `CREATE CONSTRAINT TRIGGER ${name} AFTER INSERT ON instances
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${name}()`
      : `CREATE TRIGGER ${name} BEFORE INSERT ON instances FOR EACH ROW EXECUTE FUNCTION ${name}()`,
  );
  try {
    await fn();
  } finally {
    await sql(t.databaseUrl, `DROP TRIGGER ${name} ON instances`);
    await sql(t.databaseUrl, `DROP FUNCTION ${name}()`);
  }
}

const parallel = <T>(reqs: (() => PromiseLike<T>)[]) => Promise.all(reqs.map((r) => r()));

/** Instances of a network in the database, by name. */
async function stored(networkId: string) {
  const rows = await sql<{ name: string; ip: string; revision: string }>(
    t.databaseUrl,
    'SELECT name, host(ip) AS ip, revision FROM instances WHERE network_id = $1',
    [networkId],
  );
  return new Map(rows.map((r) => [r.name, { ip: r.ip, revision: Number(r.revision) }]));
}

/** Every instance of the network appears in the desired state of its host. */
async function expectInDesiredState(names: Map<string, string>, absent: string[] = []) {
  const byHost = new Map<string, Set<string>>();
  for (const h of hosts) {
    const body = (await t.get(`/hosts/${h.name}/desired-state`).expect(200)).body;
    byHost.set(
      h.name,
      new Set(
        body.resources
          .filter((r: { kind: string }) => r.kind === 'port')
          .map((r: { spec: { name: string } }) => r.spec.name),
      ),
    );
  }
  for (const [name, host] of names)
    expect({ name, present: byHost.get(host)!.has(name) }).toEqual({ name, present: true });
  for (const name of absent)
    for (const [host, ports] of byHost)
      expect({ name, host, present: ports.has(name) }).toEqual({ name, host, present: false });
}

describe('group commit', () => {
  it('a batch where some requests conflict: the others commit, each alone', async () => {
    const net = await t.newNetwork('overlay', '10.90.0.0/24');
    const first = await t.newInstance(net.name, hosts[0].name, { name: 'gc-taken' });
    const reqs: (() => PromiseLike<Response>)[] = [];
    for (let i = 0; i < 40; i++) {
      reqs.push(() =>
        t.post('/instances', { name: `gc-ok-${i}`, network: net.name, host: hosts[i % 3].name }),
      );
      // every fourth a name that exists, every fifth an address that is in use
      if (i % 4 === 0)
        reqs.push(() =>
          t.post('/instances', { name: 'gc-taken', network: net.name, host: hosts[1].name }),
        );
      if (i % 5 === 0)
        reqs.push(() =>
          t.post('/instances', {
            name: `gc-ip-${i}`,
            network: net.name,
            host: hosts[2].name,
            ip: first.ip,
          }),
        );
    }
    const res = await parallel(reqs);
    const ok = res.filter((r) => r.status === 201);
    const conflicts = res.filter((r) => r.status === 409);
    expect(ok.map((r) => r.body.name).sort()).toEqual(
      Array.from({ length: 40 }, (_, i) => `gc-ok-${i}`).sort(),
    );
    expect(conflicts).toHaveLength(res.length - 40);
    // the 201s were committed together in fewer revisions than requests (a burst of 40
    // arrives while the first batch commits), each answering with its revision
    const revisions = new Set(ok.map((r) => r.body.revision as number));
    expect(revisions.size).toBeLessThan(ok.length);
    const rows = await stored(net.id);
    expect(rows.size).toBe(41);
    for (const r of ok)
      expect(rows.get(r.body.name)).toEqual({ ip: r.body.ip, revision: r.body.revision });
    const logged = await sql<{ revision: string; n: string }>(
      t.databaseUrl,
      `SELECT revision, jsonb_array_length(changes) AS n FROM revisions WHERE revision = ANY($1)`,
      [[...revisions]],
    );
    expect(logged.map((l) => Number(l.revision)).sort()).toEqual([...revisions].sort());
    // a revision's changes are exactly the creates that answered with it
    for (const l of logged) {
      expect(Number(l.n)).toBe(ok.filter((r) => r.body.revision === Number(l.revision)).length);
    }
    await expectInDesiredState(new Map(ok.map((r) => [r.body.name, r.body.host])), ['gc-ip-0']);
  });

  it('bulk and single creates mixed: a failing bulk leaves nothing, the rest commit', async () => {
    const net = await t.newNetwork('fabric', '10.91.0.0/24');
    await t.newInstance(net.name, hosts[0].name, { name: 'gcb-taken' });
    const bulk =
      (prefix: string, n: number, extra: { name: string }[] = []) =>
      () =>
        t.post('/instances/bulk', {
          instances: [
            ...Array.from({ length: n }, (_, i) => ({
              name: `${prefix}-${i}`,
              network: net.name,
              host: hosts[i % 3].name,
            })),
            ...extra.map((e) => ({ ...e, network: net.name, host: hosts[0].name })),
          ],
        });
    const reqs = [
      bulk('gcb-a', 30),
      ...Array.from(
        { length: 15 },
        (_, i) => () =>
          t.post('/instances', { name: `gcb-s-${i}`, network: net.name, host: hosts[i % 3].name }),
      ),
      // fails on its last item, after its first 20 were inserted
      bulk('gcb-bad', 20, [{ name: 'gcb-taken' }]),
      bulk('gcb-b', 30),
    ];
    const res = await parallel(reqs);
    expect(res.map((r) => r.status)).toEqual([201, ...Array(15).fill(201), 409, 201]);
    const rows = await stored(net.id);
    expect([...rows.keys()].filter((n) => n.startsWith('gcb-bad'))).toEqual([]);
    expect(rows.size).toBe(1 + 30 + 15 + 30);
    for (const r of [res[0], res[17]]) {
      for (const item of r.body.items) {
        expect(rows.get(item.name)).toEqual({ ip: item.ip, revision: r.body.revision });
      }
    }
    await expectInDesiredState(
      new Map(res[0].body.items.map((i: { name: string; host: string }) => [i.name, i.host])),
      ['gcb-bad-0', 'gcb-bad-19'],
    );
  });

  it('a request that fails after its batch was planned fails alone; the engine keeps no trace of it', async () => {
    const net = await t.newNetwork('overlay', '10.92.0.0/24');
    // A deferred check, run at COMMIT — after the batch's engine pass planned the revision.
    await withRefusal('gcp-poison', true, async () => {
      const reqs = Array.from(
        { length: 30 },
        (_, i) => () =>
          t.post('/instances', {
            name: i === 12 ? 'gcp-poison' : `gcp-${i}`,
            network: net.name,
            host: hosts[i % 3].name,
          }),
      );
      const res = await parallel(reqs);
      expect(res.map((r) => r.status)).toEqual(res.map((_, i) => (i === 12 ? 400 : 201)));
      const rows = await stored(net.id);
      expect(rows.size).toBe(29);
      expect(rows.has('gcp-poison')).toBe(false);
      const ok = res.filter((r) => r.status === 201);
      for (const r of ok)
        expect(rows.get(r.body.name)).toEqual({ ip: r.body.ip, revision: r.body.revision });
      await expectInDesiredState(new Map(ok.map((r) => [r.body.name, r.body.host])), [
        'gcp-poison',
      ]);
      // the engine equals what a replica computes from the database alone
      const fresh = await startController({ databaseUrl: t.databaseUrl });
      try {
        for (const h of hosts) {
          const mine = (await t.get(`/hosts/${h.name}/desired-state`).expect(200)).body;
          const theirs = (await fresh.get(`/hosts/${h.name}/desired-state`).expect(200)).body;
          expect(mine).toEqual(theirs);
        }
      } finally {
        await fresh.close();
      }
    });
  });

  it('a statement that fails outright inside a batch fails only its own request', async () => {
    const net = await t.newNetwork('overlay', '10.93.0.0/24');
    // Raised by the insert itself: the transaction is aborted, the batch is taken apart.
    await withRefusal('gcr-refused', false, async () => {
      const res = await parallel(
        Array.from(
          { length: 30 },
          (_, i) => () =>
            t.post('/instances', {
              name: i % 10 === 7 ? `gcr-refused-${i}` : `gcr-${i}`,
              network: net.name,
              host: hosts[i % 3].name,
            }),
        ),
      );
      expect(res.map((r) => r.status)).toEqual(res.map((_, i) => (i % 10 === 7 ? 400 : 201)));
      const rows = await stored(net.id);
      expect(rows.size).toBe(27);
      const ok = res.filter((r) => r.status === 201);
      for (const r of ok) {
        expect(rows.get(r.body.name)).toEqual({ ip: r.body.ip, revision: r.body.revision });
      }
      // the addresses of the refused ones were not lost: the lowest free is handed out next
      const used = [...rows.values()].map((r) => Number(r.ip.split('.')[3])).sort((a, b) => a - b);
      expect(used).toEqual(Array.from({ length: 27 }, (_, k) => k + 2));
      await expectInDesiredState(new Map(ok.map((r) => [r.body.name, r.body.host])), [
        'gcr-refused-7',
      ]);
    });
  });
});
