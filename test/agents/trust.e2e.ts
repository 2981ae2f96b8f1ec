import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { encode, MAX_FRAME_BYTES, REPORT_LIMITS } from '../../libs/protocol/src/index.js';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { startController, type TestController } from '../support/controller.js';
import { connectRawAgent, helloFrame } from '../support/raw-agent.js';

/**
 * The controller believes only what it sent, gets states of any size through, drops an
 * agent that does not read, and ends a revoked agent's session on whichever replica holds
 * it (issue "Faults and trust", points 2-4).
 */
const ENV = {
  LATTICE_AGENT_TIMEOUT_MS: '5000',
  LATTICE_HELLO_TIMEOUT_MS: '2000',
  LATTICE_AGENT_QUEUE_BYTES: String(256 * 1024),
};
const dir = mkdtempSync(join(tmpdir(), 'lattice-trust-'));
let a: TestController;
let b: TestController;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  a = await startController({ env: ENV });
  b = await startController({ env: ENV, databaseUrl: a.databaseUrl });
});

afterAll(async () => {
  await Promise.all(agents.map((x) => x.stop()));
  await b?.close();
  await a?.close();
  rmSync(dir, { recursive: true, force: true });
});

const connect = (t: TestController) => connectRawAgent(t.url);
const hello = helloFrame;

async function metric(t: TestController, name: string, labels: string): Promise<number> {
  const text = (await t.get('/metrics').expect(200)).text;
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('an agent is believed only about what it was sent', () => {
  it('refuses a hello claiming a revision never issued, resyncs it, and does not count it applied', async () => {
    const h = await a.newHost();
    const net = await a.newNetwork('overlay', '10.60.0.0/24');
    await a.post('/instances', { name: 'liar0', network: net.name, host: h.name }).expect(201);
    // an honest first session tells the agent its cluster id
    const honest = await connect(a);
    honest.ws.send(hello(h.name, h.agentToken, 0));
    const { cluster } = await honest.next();
    honest.ws.close();
    await honest.closed;
    const c = await connect(a);
    const refusedBefore = await metric(a, 'lattice_agent_sessions_dropped_total', 'reason="claim"');
    c.ws.send(hello(h.name, h.agentToken, 999_999, cluster));
    const first = await c.next();
    // a snapshot of its real state, not a diff from a revision that does not exist
    expect(first.type).toBe('snapshot');
    expect(first.revision).toBeLessThan(999_999);
    expect(await metric(a, 'lattice_agent_sessions_dropped_total', 'reason="claim"')).toBe(
      refusedBefore + 1,
    );
    const view = (await a.get(`/hosts/${h.name}`).expect(200)).body;
    expect(view.inSync).toBe(false);
    expect(view.appliedRevision).toBeLessThan(999_999);
    // a change for this host is not "applied" because the agent once said 999999
    await a
      .post('/instances?wait=applied&timeoutMs=300', {
        name: 'liar1',
        network: net.name,
        host: h.name,
      })
      .expect(504);
    // a later ack beyond what was sent is refused too
    c.ws.send(encode({ type: 'ack', revision: 999_999 }));
    const diff = await c.next(); // the create's diff
    expect(diff.type).toBe('diff');
    expect((await c.next()).code).toBe('bad_revision');
    // acknowledging what it really got makes it in sync
    c.ws.send(encode({ type: 'ack', revision: diff.toRevision }));
    await until('in sync', async () => {
      const v = (await a.get(`/hosts/${h.name}`).expect(200)).body;
      return v.inSync ? v : undefined;
    });
    c.ws.close();
  });

  it('refuses a revision claimed in another cluster', async () => {
    const h = await a.newHost();
    const c = await connect(a);
    c.ws.send(hello(h.name, h.agentToken, 3, 'another-cluster'));
    expect((await c.next()).type).toBe('snapshot');
    expect((await a.get(`/hosts/${h.name}`).expect(200)).body.appliedRevision).toBe(0);
    c.ws.close();
  });
});

describe('what an agent reports is stored bounded', () => {
  it('keeps at most REPORT_LIMITS errors and drift items per host, messages cut', async () => {
    const h = await a.newHost();
    const c = await connect(a);
    c.ws.send(hello(h.name, h.agentToken, 0));
    const first = await c.next();
    const revision = first.revision ?? first.toRevision;
    const many = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        key: `port:p${i}`,
        message: `failed ${i} `.padEnd(500, 'x'),
        repaired: true,
      }));
    c.ws.send(encode({ type: 'status', revision, errors: many(10_000) }));
    c.ws.send(encode({ type: 'drift', revision, items: many(5_000) }));
    const res = await until('the errors are stored', async () => {
      const r = await a.get(`/hosts/${h.name}`).expect(200);
      return r.body.agent.errors.length > 0 && r.body.agent.drift.length > 0 ? r : undefined;
    });
    const { errors, drift } = res.body.agent;
    expect(errors).toHaveLength(REPORT_LIMITS.errors);
    expect(errors.at(-1)).toEqual({ key: '*', message: '9901 more errors not shown' });
    expect(drift).toHaveLength(REPORT_LIMITS.errors);
    expect(drift.at(-1)).toMatchObject({ key: '*', repaired: false });
    expect(res.text.length).toBeLessThan(
      3 * REPORT_LIMITS.errors * (REPORT_LIMITS.messageChars + 100),
    );
    c.ws.close();
  });
});

describe('revocation reaches the replica that holds the agent', () => {
  it('a token rotated through one replica ends the session on the other within a second', async () => {
    const h = await a.newHost();
    const c = await connect(b);
    c.ws.send(hello(h.name, h.agentToken, 0));
    await c.next();
    const at = Date.now();
    const rotated = (await a.post(`/hosts/${h.name}/agent-token`).expect(200)).body;
    expect(await c.closed).toEqual({ code: 1008, reason: 'agent token revoked' });
    expect(Date.now() - at).toBeLessThan(1000);
    // the new token works on that replica, and is not revoked by the same notification
    const again = await connect(b);
    again.ws.send(hello(h.name, rotated.agentToken, 0));
    expect(['snapshot', 'diff']).toContain((await again.next()).type);
    await new Promise((r) => setTimeout(r, 300));
    expect(again.ws.readyState).toBe(WebSocket.OPEN);

    // deleting the host through replica a ends the session on replica b
    const del = Date.now();
    await a.del(`/hosts/${h.name}`).expect(200);
    expect(await again.closed).toEqual({ code: 1008, reason: 'host deleted' });
    expect(Date.now() - del).toBeLessThan(1000);
  });
});

describe('states of any size', () => {
  // A fabric network keeps a neighbour and an FDB entry on every host for each instance
  // elsewhere: 50,000 instances on one host give the other host over 100,000 resources.
  const INSTANCES = 50_000;
  let big: any;
  let other: any;
  let net: any;

  beforeAll(async () => {
    big = await a.newHost();
    other = await a.newHost();
    net = await a.newNetwork('fabric', '10.64.0.0/16');
    // one member instance makes `big` part of the network
    await a.post('/instances', { name: 'big-own', network: net.name, host: big.name }).expect(201);
    for (let i = 0; i < INSTANCES; i += 1000) {
      const instances = Array.from({ length: 1000 }, (_, j) => ({
        name: `f${i + j}`,
        network: net.name,
        host: other.name,
      }));
      await a.post('/instances/bulk', { instances }).expect(201);
    }
  }, 240_000);

  it('brings a host of over 100,000 resources to its state, in frames no bigger than the limit', async () => {
    const desired = (await a.get(`/hosts/${big.name}/desired-state`).expect(200)).body;
    expect(desired.resources.length).toBeGreaterThan(100_000);
    expect(Buffer.byteLength(JSON.stringify(desired.resources))).toBeGreaterThan(MAX_FRAME_BYTES);
    const framesBefore = await metric(a, 'lattice_agent_frames_sent_total', 'type="snapshot"');
    const agent = spawnAgent({
      url: a.url,
      host: big.name,
      token: big.agentToken,
      stateDir: join(dir, 'big'),
    });
    agents.push(agent);
    await agent.waitFor(new RegExp(`applied revision ${desired.revision} \\(snapshot`), 120_000);
    const parts =
      (await metric(a, 'lattice_agent_frames_sent_total', 'type="snapshot"')) - framesBefore;
    expect(parts).toBeGreaterThan(1);
    await until('in sync', async () => {
      const v = (await a.get(`/hosts/${big.name}`).expect(200)).body;
      return v.inSync ? v : undefined;
    });
    const byKey = (rs: { key: string }[]) => [...rs].sort((x, y) => (x.key < y.key ? -1 : 1));
    await until('the agent holds the desired state', () =>
      Promise.resolve(agent.applied().length === desired.resources.length ? true : undefined),
    );
    expect(byKey(agent.applied())).toEqual(byKey(desired.resources));
  }, 180_000);

  it('drops an agent that does not read past its queue bound; others are not held up', async () => {
    const c = await connect(a);
    const droppedBefore = await metric(a, 'lattice_agent_sessions_dropped_total', 'reason="queue"');
    // Says hello and then never reads a byte: the snapshot's parts pile up in the socket.
    c.ws.send(hello(other.name, other.agentToken, 0));
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    // more for it while the snapshot's parts still wait in its queue
    await a
      .post('/instances', { name: 'for-stalled', network: net.name, host: other.name })
      .expect(201);
    await until('the stalled agent is dropped', async () =>
      (await metric(a, 'lattice_agent_sessions_dropped_total', 'reason="queue"')) > droppedBefore
        ? true
        : undefined,
    );
    await until('the host shows no agent', async () =>
      (await a.get(`/hosts/${other.name}`).expect(200)).body.agent.connected ? undefined : true,
    );
    // a change for both hosts: the reading agent applies it, nobody waits on the dropped one
    const r = await a
      .post('/instances?wait=applied&timeoutMs=10000', {
        name: 'after-stall',
        network: net.name,
        host: big.name,
      })
      .expect(201);
    expect(r.body.name).toBe('after-stall');
    c.ws.terminate();
  }, 60_000);
});
