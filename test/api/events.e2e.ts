import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import WebSocket from 'ws';
import { encode } from '../../libs/protocol/src/index.js';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import {
  ADMIN_TOKEN,
  startController,
  VIEWER_TOKEN,
  type TestController,
} from '../support/controller.js';
import { connectRawAgent } from '../support/raw-agent.js';

/**
 * The live event stream (`/events`): a real controller (and a second replica on the same
 * database), real agent processes and hand-driven agents.
 */
const ENV = { LATTICE_AGENT_TIMEOUT_MS: '5000' };
const dir = mkdtempSync(join(tmpdir(), 'lattice-events-'));
let a: TestController;
let b: TestController;
const agents: AgentProcess[] = [];
const clients: Sub[] = [];

beforeAll(async () => {
  a = await startController({ env: ENV });
  b = await startController({ env: ENV, databaseUrl: a.databaseUrl });
});

afterAll(async () => {
  for (const c of clients) c.ws.terminate();
  await Promise.all(agents.map((x) => x.stop()));
  await b?.close();
  await a?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Sub {
  readonly ws: WebSocket;
  readonly events: any[];
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The first event (from the cursor on) matching `pred`; moves the cursor past it. */
  next(pred?: (e: any) => boolean, timeoutMs?: number): Promise<any>;
}

/** Opens `/events` and sends `first` (an auth message unless it is a string). */
async function subscribe(
  c: TestController,
  first: object | string | null = { type: 'auth', token: ADMIN_TOKEN },
): Promise<Sub> {
  const ws = new WebSocket(`${c.url.replace(/^http/, 'ws')}/events`);
  const events: any[] = [];
  const waiters = new Set<() => void>();
  let cursor = 0;
  ws.on('message', (d: Buffer) => {
    events.push(JSON.parse(d.toString()));
    for (const w of waiters) w();
  });
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => {
      r({ code, reason: reason.toString() });
      for (const w of waiters) w();
    }),
  );
  let isClosed = false;
  void closed.then(() => (isClosed = true));
  await new Promise<void>((ok, fail) => {
    ws.on('open', ok);
    ws.on('error', fail);
  });
  if (first !== null) ws.send(typeof first === 'string' ? first : JSON.stringify(first));
  const sub: Sub = {
    ws,
    events,
    closed,
    next: (pred = () => true, timeoutMs = 15_000) =>
      new Promise((ok, fail) => {
        const check = () => {
          for (let i = cursor; i < events.length; i++) {
            if (pred(events[i])) {
              cursor = i + 1;
              done();
              ok(events[i]);
              return;
            }
          }
          if (isClosed) {
            done();
            fail(new Error(`closed before a matching event; got ${JSON.stringify(events)}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          fail(new Error(`no matching event in ${timeoutMs} ms; got ${JSON.stringify(events)}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        void closed.then(check);
        check();
      }),
  };
  clients.push(sub);
  return sub;
}

const revisionOf = (r: number) => (e: any) => e.type === 'revision' && e.revision === r;

describe('authentication', () => {
  it('closes 1008 on a wrong token, on anything but auth first, and without auth in 5 s', async () => {
    const bad = await subscribe(a, { type: 'auth', token: 'not-a-token' });
    expect(await bad.closed).toEqual({ code: 1008, reason: 'invalid token' });
    expect(bad.events).toEqual([]);
    const junk = await subscribe(a, 'hello');
    expect((await junk.closed).code).toBe(1008);
    const silent = await subscribe(a, null);
    const t0 = Date.now();
    expect((await silent.closed).code).toBe(1008);
    expect(Date.now() - t0).toBeGreaterThan(4000);
    expect(silent.events).toEqual([]);
  }, 20_000);

  it('accepts the viewer token and sends the summary first', async () => {
    const host = await a.newHost();
    const sub = await subscribe(a, { type: 'auth', token: VIEWER_TOKEN });
    const summary = await sub.next();
    expect(summary.type).toBe('summary');
    expect(summary.revision).toBeGreaterThanOrEqual(host.revision);
    expect(summary.counts).toEqual(
      expect.objectContaining({ hosts: expect.any(Number), networks: expect.any(Number) }),
    );
    const listed = (await a.get('/hosts?limit=1000').expect(200)).body;
    expect(summary.counts.hosts).toBe(listed.items.length);
    expect(summary.hosts).toContainEqual({
      id: host.id,
      name: host.name,
      connected: false,
      lastSeen: null,
      desiredRevision: expect.any(Number),
      appliedRevision: 0,
      inSync: false,
      errors: 0,
      drift: 0,
    });
    sub.ws.close();
  });
});

describe('revisions', () => {
  it('sends every REST create as a revision event, in order, on this replica and another', async () => {
    const onA = await subscribe(a);
    const onB = await subscribe(b, { type: 'auth', token: VIEWER_TOKEN });
    await onA.next((e) => e.type === 'summary');
    await onB.next((e) => e.type === 'summary');
    const host = await a.newHost();
    const net = await a.newNetwork('overlay', '10.20.0.0/24'); // changes no host
    const inst = await a.newInstance(net.id, host.id);
    for (const sub of [onA, onB]) {
      const h = await sub.next(revisionOf(host.revision));
      expect(h.changes).toContainEqual({ type: 'host.upsert', id: host.id, name: host.name });
      expect(Date.parse(h.at)).not.toBeNaN();
      const n = await sub.next(revisionOf(net.revision));
      expect(n.changes).toContainEqual(
        expect.objectContaining({ type: 'network.upsert', id: net.id, name: net.name }),
      );
      expect(n.hosts).toEqual([]);
      const i = await sub.next(revisionOf(inst.revision));
      expect(i.hosts).toEqual([host.id]);
      expect(i.changes).toContainEqual(
        expect.objectContaining({ type: 'instance.upsert', id: inst.id, name: inst.name }),
      );
    }
    // In order, without gaps, on both.
    for (const sub of [onA, onB]) {
      const revs = sub.events.filter((e) => e.type === 'revision').map((e) => e.revision);
      expect(revs).toEqual([...revs].sort((x, y) => x - y));
      expect(revs[revs.length - 1] - revs[0]).toBe(revs.length - 1);
    }
    // Written through b: seen on a.
    const other = (await b.newNetwork('bridge', '10.21.0.0/24')).revision;
    await onA.next(revisionOf(other));
    onA.ws.close();
    onB.ws.close();
  });

  it('resumes from a revision: summary, then the kept revisions after it', async () => {
    const first = await subscribe(a);
    const summary = await first.next((e) => e.type === 'summary');
    const r1 = (await a.newNetwork('bridge', '10.22.0.0/24')).revision;
    await first.next(revisionOf(r1));
    first.ws.close();
    const r2 = (await a.newNetwork('bridge', '10.23.0.0/24')).revision;
    const r3 = (await a.newNetwork('bridge', '10.24.0.0/24')).revision;
    const again = await subscribe(a, { type: 'auth', token: ADMIN_TOKEN, since: r1 });
    const s2 = await again.next();
    expect(s2).toEqual(expect.objectContaining({ type: 'summary', resumed: true }));
    expect(s2.revision).toBeGreaterThanOrEqual(r3);
    const replayed = [await again.next(), await again.next()];
    expect(replayed.map((e) => [e.type, e.revision])).toEqual([
      ['revision', r2],
      ['revision', r3],
    ]);
    expect(summary.revision).toBeLessThan(r1);
    again.ws.close();

    // A replica started now keeps nothing older: summary only.
    const c = await startController({ env: ENV, databaseUrl: a.databaseUrl });
    try {
      const late = await subscribe(c, { type: 'auth', token: ADMIN_TOKEN, since: r1 });
      const s3 = await late.next();
      expect(s3).toEqual(expect.objectContaining({ type: 'summary', resumed: false }));
      expect(s3.revision).toBeGreaterThanOrEqual(r3);
      await new Promise((r) => setTimeout(r, 300));
      expect(late.events.filter((e) => e.type === 'revision')).toEqual([]);
      late.ws.close();
    } finally {
      await c.close();
    }
  });
});

describe('agents', () => {
  it('reports connect, applied, convergence and disconnect of a real agent', async () => {
    const sub = await subscribe(a);
    await sub.next((e) => e.type === 'summary');
    const host = await a.newHost();
    const agent = spawnAgent({
      url: a.url,
      host: host.name,
      token: host.agentToken,
      stateDir: join(dir, host.name),
    });
    agents.push(agent);
    const up = await sub.next((e) => e.type === 'agent' && e.host === host.id && e.connected);
    expect(up).toEqual({
      type: 'agent',
      host: host.id,
      name: host.name,
      connected: true,
      appliedRevision: expect.any(Number),
      lastSeen: expect.any(String),
    });
    const net = await a.newNetwork('overlay', '10.30.0.0/24');
    const inst = await a.newInstance(net.id, host.id);
    await sub.next(revisionOf(inst.revision));
    await sub.next(
      (e) => e.type === 'agent' && e.host === host.id && e.appliedRevision >= inst.revision,
    );
    const conv = await sub.next((e) => e.type === 'converged' && e.revision === inst.revision);
    expect(conv).toEqual({
      type: 'converged',
      revision: inst.revision,
      ms: expect.any(Number),
      hosts: 1,
    });
    expect(conv.ms).toBeLessThan(10_000);
    // The summary agrees with GET /hosts.
    const viewer = await subscribe(a, { type: 'auth', token: VIEWER_TOKEN });
    const s = await viewer.next();
    const listed = (await a.get(`/hosts/${host.id}`).expect(200)).body;
    expect(s.hosts.find((h: any) => h.id === host.id)).toEqual(
      expect.objectContaining({
        connected: true,
        inSync: listed.inSync,
        desiredRevision: listed.desiredRevision,
      }),
    );
    viewer.ws.close();
    await agent.stop();
    await sub.next((e) => e.type === 'agent' && e.host === host.id && !e.connected);
    sub.ws.close();
  });

  it('forwards errors and drift reported by an agent', async () => {
    const sub = await subscribe(a);
    await sub.next((e) => e.type === 'summary');
    const host = await a.newHost();
    const raw = await connectRawAgent(a.url);
    raw.hello(host.name, host.agentToken);
    const first = await raw.next();
    expect(['snapshot', 'diff']).toContain(first.type);
    const snap = { revision: (first.revision ?? first.toRevision) as number };
    raw.ws.send(
      encode({
        type: 'status',
        revision: snap.revision,
        errors: [{ key: 'bridge:ltbr1', message: 'boom' }],
      }),
    );
    const errs = await sub.next((e) => e.type === 'errors' && e.host === host.id);
    expect(errs.errors).toEqual([{ key: 'bridge:ltbr1', message: 'boom' }]);
    raw.ws.send(
      encode({
        type: 'drift',
        revision: snap.revision,
        items: [{ key: 'route:10.9.0.0/24', message: 'missing', repaired: true }],
      }),
    );
    const drift = await sub.next((e) => e.type === 'drift' && e.host === host.id);
    expect(drift.items).toEqual([{ key: 'route:10.9.0.0/24', message: 'missing', repaired: true }]);
    // An ack clears the errors.
    raw.ws.send(encode({ type: 'ack', revision: snap.revision }));
    const cleared = await sub.next((e) => e.type === 'errors' && e.host === host.id);
    expect(cleared.errors).toEqual([]);
    raw.ws.close();
    await sub.next((e) => e.type === 'agent' && e.host === host.id && !e.connected);
    sub.ws.close();
  });
});

describe('a slow subscriber', () => {
  it('is dropped with 4008 while the controller and other subscribers carry on', async () => {
    const metric = async (name: string) => {
      const text = (
        await request(a.url).get('/api/v1/metrics').set('authorization', `Bearer ${ADMIN_TOKEN}`)
      ).text;
      const m = new RegExp(`^${name} (\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : NaN;
    };
    const dropped0 = await metric('lattice_event_subscribers_dropped_total');
    const slow = await subscribe(a);
    const fast = await subscribe(a, { type: 'auth', token: VIEWER_TOKEN });
    await slow.next((e) => e.type === 'summary');
    await fast.next((e) => e.type === 'summary');
    expect(await metric('lattice_event_subscribers')).toBeGreaterThanOrEqual(2);
    slow.ws.pause();
    const host = await a.newHost();
    let net = await a.newNetwork('bridge', '10.64.0.0/16');
    let last = 0;
    const started = Date.now();
    for (let i = 0; i < 200; i++) {
      if (i % 50 === 49) net = await a.newNetwork('bridge', `10.${65 + i / 50}.0.0/16`);
      const t0 = Date.now();
      const res = await a
        .post('/instances/bulk', {
          instances: Array.from({ length: 1000 }, (_, k) => ({
            name: `slow-${i}-${k}`,
            network: net.id,
            host: host.id,
          })),
        })
        .expect(201);
      last = res.body.revision ?? last;
      expect(Date.now() - t0).toBeLessThan(10_000); // never held up by the subscriber
      if ((await metric('lattice_event_subscribers_dropped_total')) > dropped0) break;
    }
    expect(await metric('lattice_event_subscribers_dropped_total')).toBe(dropped0 + 1);
    // The fast one saw the last revision; the slow one, resumed, reads what was queued
    // and then the close.
    if (last) await fast.next(revisionOf(last), 30_000);
    slow.ws.resume();
    expect(await slow.closed).toEqual({ code: 4008, reason: 'too slow' });
    expect(fast.ws.readyState).toBe(WebSocket.OPEN);
    await a.get('/hosts').expect(200);
    console.log(`slow subscriber dropped after ${Date.now() - started} ms of bulk creates`);
    fast.ws.close();
  }, 120_000);
});
