import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../apps/controller/src/database/embedded-postgres.js';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { startController, type TestController } from '../support/controller.js';

/**
 * The loop closed end to end: a real controller on real PostgreSQL, real agent processes
 * on the memory data plane, real WebSockets.
 */
const ENV = { LATTICE_AGENT_TIMEOUT_MS: '3000', LATTICE_HELLO_TIMEOUT_MS: '1000' };
const dir = mkdtempSync(join(tmpdir(), 'lattice-agents-'));
let port: number;
let t: TestController;
const hosts: Record<string, { id: string; name: string; agentToken: string }> = {};
const agents: Record<string, AgentProcess> = {};

const byKey = (rs: { key: string }[]) => [...rs].sort((a, b) => (a.key < b.key ? -1 : 1));
const desired = async (h: string) => (await t.get(`/hosts/${h}/desired-state`).expect(200)).body;
const start = (h: string) =>
  (agents[h] = spawnAgent({
    url: t.url,
    host: h,
    token: hosts[h].agentToken,
    stateDir: join(dir, h),
  }));

async function expectConverged(names = Object.keys(agents)) {
  for (const h of names) {
    const want = await desired(h);
    expect({ host: h, resources: byKey(agents[h].applied()) }).toEqual({
      host: h,
      resources: byKey(want.resources),
    });
  }
}

beforeAll(async () => {
  port = await freePort();
  t = await startController({ env: ENV, port });
  for (const [i, name] of ['a1', 'a2', 'a3'].entries()) {
    hosts[name] = (
      await t.post('/hosts', { name, underlayIp: `192.0.2.${21 + i}` }).expect(201)
    ).body;
    start(name);
  }
  for (const h of Object.keys(agents)) await agents[h].waitFor(/applied revision/);
});

afterAll(async () => {
  await Promise.all(Object.values(agents).map((a) => a.stop()));
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('agents converge on the desired state', () => {
  it('applies every change before ?wait=applied answers', async () => {
    const blue = (
      await t
        .post('/networks?wait=applied', { name: 'blue', model: 'overlay', cidr: '10.10.0.0/24' })
        .expect(201)
    ).body;
    const web: any[] = [];
    for (const [i, h] of ['a1', 'a2', 'a3', 'a1'].entries()) {
      const res = await t
        .post('/instances?wait=applied&timeoutMs=10000', {
          name: `web${i}`,
          network: blue.name,
          host: h,
        })
        .expect(201);
      expect(typeof res.body.appliedInMs).toBe('number');
      web.push(res.body);
    }
    // no polling: the answer itself means every affected agent has it
    await expectConverged();
    const list = (await t.get('/hosts').expect(200)).body.items;
    for (const h of list)
      expect(h).toMatchObject({ agent: { connected: true, version: '0.1.0' }, inSync: true });
    expect((await t.get(`/instances/${web[0].name}`).expect(200)).body.state).toBe('active');

    const pods = (
      await t
        .post('/networks', { name: 'pods', model: 'routed', cidr: '10.244.0.0/16' })
        .expect(201)
    ).body;
    const bulk = await t
      .post('/instances/bulk?wait=applied', {
        instances: ['a1', 'a2', 'a3'].map((h, i) => ({
          name: `pod${i}`,
          network: pods.name,
          host: h,
        })),
      })
      .expect(201);
    expect(bulk.body.items).toHaveLength(3);
    await t.patch(`/instances/${web[3].name}?wait=applied`, { host: 'a2' }).expect(200);
    await t.del(`/instances/${web[1].name}?wait=applied`).expect(200);
    await expectConverged();
  });

  it('rejects bad wait parameters before changing anything', async () => {
    const res = await t
      .post('/networks?wait=soon&timeoutMs=0', {
        name: 'never',
        model: 'bridge',
        cidr: '10.99.0.0/24',
      })
      .expect(400);
    expect(res.body.details.map((d: { field: string }) => d.field)).toEqual(['wait', 'timeoutMs']);
    await t.get('/networks/never').expect(404);
  });

  it('answers 504 with the lagging hosts when an agent does not apply in time', async () => {
    // a3 stops acknowledging: SIGSTOP freezes the process while its socket stays open
    agents.a3.proc.kill('SIGSTOP');
    try {
      const res = await t
        .post('/instances?wait=applied&timeoutMs=300', {
          name: 'late',
          network: 'blue',
          host: 'a3',
        })
        .expect(504);
      expect(res.body.details.lagging.map((h: { name: string }) => h.name)).toEqual(['a3']);
      expect(res.body.details.result.name).toBe('late');
      await t.get('/instances/late').expect(200); // committed all the same
    } finally {
      agents.a3.proc.kill('SIGCONT');
    }
    await expectConvergedSoon();
  });

  it('resumes a restarted agent with a diff, not a snapshot', async () => {
    await agents.a2.stop();
    await t.post('/instances', { name: 'while-away', network: 'blue', host: 'a2' }).expect(201);
    await t.post('/instances', { name: 'while-away-2', network: 'pods', host: 'a1' }).expect(201);
    const a2 = start('a2');
    const line = await a2.waitFor(/applied revision \d+ \((diff|snapshot)/);
    expect(line).toMatch(/\(diff,/);
    expect(a2.output.some((l) => /restored revision/.test(l))).toBe(true);
    await expectConvergedSoon();
  });

  it('reaches agents connected to another replica (LISTEN/NOTIFY), and waits for them', async () => {
    const replica = await startController({
      env: ENV,
      databaseUrl: t.databaseUrl,
      dataDir: t.dataDir,
    });
    const dir2 = join(dir, 'replica');
    const host = (await t.post('/hosts', { name: 'r1', underlayIp: '192.0.2.31' }).expect(201))
      .body;
    const onReplica = spawnAgent({
      url: replica.url,
      host: 'r1',
      token: host.agentToken,
      stateDir: dir2,
    });
    try {
      await onReplica.waitFor(/applied revision/);
      // ?wait=applied waits for connected agents: let the replica's status reach the table
      const deadline = Date.now() + 5000;
      while (
        !(await t.get('/hosts/r1').expect(200)).body.agent.connected &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 50));
      }
      // through the first controller; the agent listens to the replica
      const res = await t
        .post('/instances?wait=applied&timeoutMs=10000', {
          name: 'cross',
          network: 'blue',
          host: 'r1',
        })
        .expect(201);
      const port = onReplica.applied().find((r) => r.kind === 'port');
      expect(port?.spec).toMatchObject({ mac: res.body.mac });
      expect(byKey(onReplica.applied())).toEqual(byKey((await desired('r1')).resources));
    } finally {
      await onReplica.stop();
      await replica.close();
    }
    await t.del('/instances/cross?wait=applied').expect(200);
  });

  it('survives a controller restart: agents resync without snapshots and lose nothing', async () => {
    const before = Object.fromEntries(
      Object.entries(agents).map(([h, a]) => [h, byKey(a.applied())]),
    );
    const marks = Object.fromEntries(Object.entries(agents).map(([h, a]) => [h, a.output.length]));
    await t.close();
    // nothing is removed from any agent while the controller is away
    await new Promise((r) => setTimeout(r, 500));
    for (const [h, a] of Object.entries(agents)) expect(byKey(a.applied())).toEqual(before[h]);
    t = await startController({ env: ENV, port, databaseUrl: t.databaseUrl, dataDir: t.dataDir });
    for (const [h, a] of Object.entries(agents))
      await a.waitFor(/applied revision/, 15_000, marks[h]);
    const metrics = (await t.get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/lattice_agent_resyncs_total\{kind="diff"\} 3/);
    expect(metrics).not.toMatch(/lattice_agent_resyncs_total\{kind="snapshot"\}/);
    for (const [h, a] of Object.entries(agents)) expect(byKey(a.applied())).toEqual(before[h]);
    await t
      .post('/instances?wait=applied', { name: 'after-restart', network: 'blue', host: 'a3' })
      .expect(201);
    await expectConverged();
  });
});

async function expectConvergedSoon(timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await expectConverged();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
