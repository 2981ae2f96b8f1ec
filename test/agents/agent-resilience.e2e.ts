import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Response } from 'supertest';
import { Agent, type AgentEvent } from '../../apps/agent/src/agent.js';
import { MemoryDataplane } from '../../apps/agent/src/dataplane/memory.js';
import { freePort } from '../../apps/controller/src/database/embedded-postgres.js';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { startController, type TestController } from '../support/controller.js';

/**
 * The agent under stress: many diffs applied in place and journalled, SIGKILL right after an
 * ack, a controller restart with prompt reconnects, and refusals that keep backing off.
 */
const ENV = { LATTICE_AGENT_TIMEOUT_MS: '3000', LATTICE_HELLO_TIMEOUT_MS: '1000' };
const dir = mkdtempSync(join(tmpdir(), 'lattice-resilience-'));
const HOSTS = ['x1', 'x2', 'x3', 'x4'];
let port: number;
let t: TestController;
const hosts: Record<string, { id: string; name: string; agentToken: string }> = {};
const agents: Record<string, AgentProcess> = {};
/** x5: an agent in this process, to look at its own bookkeeping. */
let inproc: { agent: Agent; dataplane: MemoryDataplane; events: AgentEvent[] };

const byKey = (rs: { key: string }[]) => [...rs].sort((a, b) => (a.key < b.key ? -1 : 1));
const desired = async (h: string) =>
  byKey((await t.get(`/hosts/${h}/desired-state`).expect(200)).body.resources);
const start = (h: string, args: string[] = []) =>
  (agents[h] = spawnAgent({
    url: t.url,
    host: h,
    token: hosts[h].agentToken,
    stateDir: join(dir, h),
    args,
  }));
const ok = (r: Response) => {
  if (r.status >= 300) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
  return r;
};
const snapshotsSent = async () => {
  const m = /lattice_agent_resyncs_total\{kind="snapshot"\} (\d+)/.exec(
    (await t.get('/metrics').expect(200)).text,
  );
  return m ? Number(m[1]) : 0;
};

async function eventually(check: () => Promise<void>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function expectConverged(names = Object.keys(agents)): Promise<void> {
  for (const h of names) {
    expect({ h, resources: byKey(agents[h].applied()) }).toEqual({
      h,
      resources: await desired(h),
    });
  }
  const want = await desired('x5');
  expect(byKey([...inproc.agent.desiredState().values()])).toEqual(want);
  expect(byKey([...inproc.dataplane.resources().values()])).toEqual(want);
}

beforeAll(async () => {
  port = await freePort();
  t = await startController({ env: ENV, port });
  for (const [i, name] of [...HOSTS, 'x5'].entries())
    hosts[name] = (
      await t.post('/hosts', { name, underlayIp: `192.0.2.${61 + i}` }).expect(201)
    ).body;
  for (const h of HOSTS) start(h);
  const dataplane = new MemoryDataplane();
  const events: AgentEvent[] = [];
  const agent = new Agent({
    controller: `${t.url.replace(/^http/, 'ws')}/agent`,
    host: 'x5',
    token: hosts.x5.agentToken,
    dataplane,
    stateDir: join(dir, 'x5'),
    heartbeatMs: 300,
  });
  agent.on((e) => events.push(e));
  inproc = { agent, dataplane, events };
  await agent.start();
  for (const h of HOSTS) await agents[h].waitFor(/applied revision/);
  await eventually(() =>
    Promise.resolve(expect(events.some((e) => e.type === 'applied')).toBe(true)),
  );
});

afterAll(async () => {
  await Promise.all(Object.values(agents).map((a) => a.stop()));
  await inproc?.agent.stop();
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('many diffs', () => {
  it('leave every agent with exactly the desired state, journalled and restorable', async () => {
    const all = [...HOSTS, 'x5'];
    await t.post('/networks', { name: 'ov', model: 'overlay', cidr: '10.70.0.0/22' }).then(ok);
    await t.post('/networks', { name: 'fb', model: 'fabric', cidr: '10.71.0.0/22' }).then(ok);
    const nets = ['ov', 'fb'];
    // creates one by one (a diff each), then moves and deletes all at once
    for (let i = 0; i < 80; i++)
      await t
        .post('/instances', { name: `m-${i}`, network: nets[i % 2], host: all[i % all.length] })
        .then(ok);
    const changes: Promise<Response>[] = [];
    for (let i = 0; i < 80; i += 2) {
      if (i % 4 === 0) changes.push(t.del(`/instances/m-${i}`).then(ok));
      else changes.push(t.patch(`/instances/m-${i}`, { host: all[(i + 1) % all.length] }).then(ok));
    }
    await Promise.all(changes);
    await t.post('/routers', { name: 'mr', networks: ['ov', 'fb'] }).then(ok);
    await t.post('/instances?wait=applied', { name: 'm-last', network: 'ov', host: 'x5' }).then(ok);
    await eventually(() => expectConverged());

    const diffs = inproc.events.filter((e) => e.type === 'applied' && e.via === 'diff').length;
    expect(diffs).toBeGreaterThan(20);
    expect(inproc.agent.received.snapshot).toBe(0);
    // the diffs went to the journal, not into one rewrite of the state file each
    for (const h of all) {
      expect(existsSync(join(dir, h, 'state.journal'))).toBe(true);
      const lines = readFileSync(join(dir, h, 'state.journal'), 'utf8')
        .trim()
        .split('\n');
      expect(lines.length).toBeGreaterThan(5);
    }
    // a restarted agent comes back where it was
    await agents.x1.stop();
    const x1 = start('x1');
    const line = await x1.waitFor(/restored revision/, 10_000);
    expect(line).toMatch(/restored revision \d+ \(\d+ resources/);
    await x1.waitFor(/applied revision \d+ \(diff/, 10_000);
    await eventually(() => expectConverged());
    expect(await snapshotsSent()).toBe(0);
  });
});

describe('SIGKILL right after an ack', () => {
  it('comes back with the acknowledged revision applied, without a snapshot', async () => {
    for (let round = 0; round < 3; round++) {
      const res = await t
        .post('/instances?wait=applied', { name: `k-${round}`, network: 'ov', host: 'x2' })
        .then(ok);
      expect(res.status).toBe(201);
      // ?wait=applied answered: x2 has acknowledged the revision. Kill it at once.
      agents.x2.proc.kill('SIGKILL');
      await agents.x2.stop();
      // nothing else changes x2: the revision it acknowledged is its desired revision
      const acked = (await t.get('/hosts/x2').expect(200)).body.desiredRevision as number;
      expect(acked).toBeGreaterThan(0);
      const x2 = start('x2');
      const restored = await x2.waitFor(/restored revision/, 10_000);
      expect(Number(/restored revision (\d+)/.exec(restored)![1])).toBe(acked);
      // from the snapshot and the journal: the last diff was never folded into state.json
      expect(Number(/(\d+) journal entries/.exec(restored)![1])).toBeGreaterThan(0);
      expect(await x2.waitFor(/applied revision \d+ \((diff|snapshot)/)).toMatch(/\(diff,/);
    }
    // and in the middle of a burst: whatever it printed as applied (after its ack) survives
    const burst: Promise<Response>[] = [];
    const mark = agents.x3.output.length;
    for (let i = 0; i < 20; i++)
      burst.push(t.post('/instances', { name: `b-${i}`, network: 'fb', host: 'x3' }).then(ok));
    await agents.x3.waitFor(/applied revision/, 10_000, mark);
    agents.x3.proc.kill('SIGKILL');
    await agents.x3.stop();
    const seen = Math.max(
      ...agents.x3.output
        .slice(mark)
        .flatMap((l) => /applied revision (\d+)/.exec(l)?.slice(1) ?? [])
        .map(Number),
    );
    await Promise.all(burst);
    const x3 = start('x3');
    const restored = await x3.waitFor(/restored revision/, 10_000);
    expect(Number(/restored revision (\d+)/.exec(restored)![1])).toBeGreaterThanOrEqual(seen);
    await eventually(() => expectConverged());
    expect(await snapshotsSent()).toBe(0);
  });
});

describe('refusals', () => {
  it('keep the exponential backoff even after a working session', async () => {
    // x4 with a long backoff and a very short fast retry: fast retries would show at once
    await agents.x4.stop();
    start('x4', ['--backoff-min-ms', '1000', '--fast-retry-max-ms', '50']);
    await agents.x4.waitFor(/applied revision/, 10_000);
    const since = agents.x4.output.length;
    // a new token disconnects the agent with 1008, and its old token is refused from then on
    const rotated = (await t.post('/hosts/x4/agent-token').expect(200)).body;
    await agents.x4.waitFor(/refused by the controller \(1008/, 5000, since);
    await new Promise((r) => setTimeout(r, 3000));
    const refusals = agents.x4.output.slice(since).filter((l) => /refused/.test(l)).length;
    // backoff 1 s, 2 s, 4 s (full jitter): a handful; fast retries would be ~60
    expect(refusals).toBeLessThan(12);
    expect(agents.x4.output.slice(since).some((l) => /fast retry/.test(l))).toBe(false);
    await agents.x4.stop();
    hosts.x4.agentToken = rotated.agentToken;
    start('x4');
    await agents.x4.waitFor(/applied revision/, 10_000);
  });
});

describe('a controller restart', () => {
  it('brings every agent back within about a second of the controller listening', async () => {
    await eventually(() => expectConverged());
    const before = Object.fromEntries(HOSTS.map((h) => [h, byKey(agents[h].applied())]));
    const marks = Object.fromEntries(HOSTS.map((h) => [h, agents[h].output.length]));
    const events = inproc.events.length;
    await t.close();
    // Away for long enough that an exponential backoff from 500 ms would be at several
    // seconds per attempt by now.
    await new Promise((r) => setTimeout(r, 5000));
    for (const h of HOSTS) expect(byKey(agents[h].applied())).toEqual(before[h]);
    t = await startController({ env: ENV, port, databaseUrl: t.databaseUrl, dataDir: t.dataDir });
    const listening = Date.now();
    const back = await Promise.all(
      HOSTS.map(async (h) => {
        await agents[h].waitFor(/applied revision/, 15_000, marks[h]);
        return Date.now() - listening;
      }),
    );
    await eventually(() =>
      Promise.resolve(
        expect(inproc.events.slice(events).some((e) => e.type === 'applied')).toBe(true),
      ),
    );
    const inprocBack = Date.now() - listening;
    // each agent's first resync, in ms after the controller listened
    expect([...back, inprocBack].filter((ms) => ms >= 3000)).toEqual([]);
    for (const h of HOSTS) {
      const out = agents[h].output.slice(marks[h]);
      // closed with 1001 GOING_AWAY, retried fast, resynced with a diff
      expect(out.some((l) => /disconnected \(1001 .*\(fast retry\)/.test(l))).toBe(true);
      expect(out.find((l) => /applied revision/.test(l))).toMatch(/\(diff,/);
      expect(byKey(agents[h].applied())).toEqual(before[h]);
    }
    const gone = inproc.events.slice(events).find((e) => e.type === 'disconnected');
    expect(gone).toMatchObject({ type: 'disconnected', code: 1001, fast: true });
    expect(await snapshotsSent()).toBe(0);
    await t
      .post('/instances?wait=applied', { name: 'after-restart', network: 'ov', host: 'x1' })
      .then(ok);
    await expectConverged();
  });
});
