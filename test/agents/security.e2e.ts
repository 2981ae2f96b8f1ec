import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import WebSocket from 'ws';
import { encode } from '../../libs/protocol/src/index.js';
import { startController, VIEWER_TOKEN, type TestController } from '../support/controller.js';
import { connectRawAgent, helloFrame } from '../support/raw-agent.js';

/** The /agent endpoint refuses what it must, in a defined way, and keeps serving others. */
let t: TestController;
let h1: any, h2: any;
beforeAll(async () => {
  t = await startController({
    env: { LATTICE_HELLO_TIMEOUT_MS: '300', LATTICE_AGENT_TIMEOUT_MS: '1500' },
  });
  h1 = await t.newHost();
  h2 = await t.newHost();
});
afterAll(() => t.close());

const connect = () => connectRawAgent(t.url, 64 * 1024 * 1024);
const hello = (host: string, token: string, appliedRevision = 0) =>
  helloFrame(host, token, appliedRevision);

describe('agent endpoint security', () => {
  it('closes with 1008 and sends nothing for a wrong, missing or foreign token', async () => {
    for (const [host, token] of [
      [h1.name, 'lah_wrong'],
      [h1.name, ''],
      [h1.name, h2.agentToken],
      ['no-such-host', h1.agentToken],
    ]) {
      const c = await connect();
      c.ws.send(hello(host, token));
      expect(await c.closed).toEqual({ code: 1008, reason: 'invalid host or token' });
      expect(c.frames).toEqual([]);
    }
  });

  it('closes a connection that never says hello (4002) or starts with garbage (1008)', async () => {
    const silent = await connect();
    expect((await silent.closed).code).toBe(4002);
    const garbage = await connect();
    garbage.ws.send('{not json');
    expect((await garbage.closed).code).toBe(1008);
    const wrongFirst = await connect();
    wrongFirst.ws.send(encode({ type: 'ack', revision: 1 }));
    expect((await wrongFirst.closed).code).toBe(1008);
    const oldVersion = await connect();
    oldVersion.ws.send(
      JSON.stringify({
        v: 99,
        type: 'hello',
        host: h1.name,
        token: h1.agentToken,
        appliedRevision: 0,
        agentVersion: 'x',
      }),
    );
    expect((await oldVersion.closed).code).toBe(4004);
  });

  it('answers garbage after hello with an error frame and keeps the session', async () => {
    const c = await connect();
    c.ws.send(hello(h1.name, h1.agentToken));
    expect((await c.next()).type).toMatch(/diff|snapshot/);
    c.ws.send('[1,2,3]');
    expect(await c.next()).toMatchObject({ type: 'error', code: 'bad_frame' });
    c.ws.send(encode({ type: 'ack', revision: 10 ** 9 }));
    expect(await c.next()).toMatchObject({ type: 'error', code: 'bad_revision' });
    c.ws.send(JSON.stringify({ v: 1, type: 'status', revision: 0, errors: 'nope' }));
    expect(await c.next()).toMatchObject({
      type: 'error',
      code: 'bad_frame',
      message: expect.stringContaining('status.errors'),
    });
    // still connected and served
    expect((await t.get(`/hosts/${h1.name}`).expect(200)).body.agent.connected).toBe(true);
    c.ws.close();
    await c.closed;
  });

  it('refuses a second live agent for the same host (4001) but replaces a dead one', async () => {
    const first = await connect();
    first.ws.send(hello(h2.name, h2.agentToken));
    await first.next();
    const second = await connect();
    second.ws.send(hello(h2.name, h2.agentToken));
    expect(await second.closed).toEqual({
      code: 4001,
      reason: 'another agent is connected for this host',
    });
    expect(first.ws.readyState).toBe(WebSocket.OPEN);
    // the first one stops answering pings (as a half-open connection would): it is replaced
    first.ws.pause();
    const third = await connect();
    third.ws.send(hello(h2.name, h2.agentToken));
    expect((await third.next()).type).toMatch(/diff|snapshot/);
    third.ws.close();
    await third.closed;
  });

  it('closes a 10 MB frame with 1009 and keeps serving other agents and the API', async () => {
    const other = await connect();
    const big = await connect();
    try {
      other.ws.send(hello(h1.name, h1.agentToken));
      await other.next();
      // after its hello (so no hello timeout races a slow upload), one 10 MB frame
      big.ws.send(hello(h2.name, h2.agentToken));
      await big.next();
      big.ws.send('x'.repeat(10 * 1024 * 1024));
      expect((await big.closed).code).toBe(1009);
      await t.get('/health', '').expect(200);
      other.ws.send(encode({ type: 'heartbeat', appliedRevision: 0 }));
      await t
        .post('/networks', { name: 'after-big', model: 'overlay', cidr: '10.77.0.0/24' })
        .expect(201);
      expect(other.ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      other.ws.close();
      big.ws.close();
      await Promise.all([other.closed, big.closed]);
    }
  });

  it('rotates an agent token: the connected agent is dropped, the old token refused, the new one accepted', async () => {
    const h = await t.newHost();
    const c = await connect();
    c.ws.send(hello(h.name, h.agentToken));
    await c.next();
    const rotated = await t.post(`/hosts/${h.name}/agent-token`).expect(200);
    expect(rotated.body.agentToken).toMatch(/^lah_/);
    expect(rotated.body.agentToken).not.toBe(h.agentToken);
    expect(await c.closed).toEqual({ code: 1008, reason: 'agent token revoked' });
    const old = await connect();
    old.ws.send(hello(h.name, h.agentToken));
    expect((await old.closed).code).toBe(1008);
    const fresh = await connect();
    fresh.ws.send(hello(h.name, rotated.body.agentToken));
    expect((await fresh.next()).type).toMatch(/diff|snapshot/);
    fresh.ws.close();
    await fresh.closed;
    await t.post(`/hosts/${h.name}/agent-token`, undefined, VIEWER_TOKEN).expect(403);
    await t.post('/hosts/nope/agent-token').expect(404);
  });

  it('sends a snapshot to an agent whose state came from another database', async () => {
    const h = await t.newHost();
    await t
      .post('/networks', { name: 'epoch-net', model: 'overlay', cidr: '10.78.0.0/24' })
      .expect(201);
    await t.post('/instances', { name: 'epoch-i', network: 'epoch-net', host: h.name }).expect(201);
    const current = (await t.get('/health', '').expect(200)).body.revision;
    const ask = async (cluster?: string) => {
      const c = await connect();
      c.ws.send(
        encode({
          type: 'hello',
          host: h.name,
          token: h.agentToken,
          appliedRevision: current,
          agentVersion: 'test',
          ...(cluster ? { cluster } : {}),
        }),
      );
      const f = await c.next();
      c.ws.close();
      await c.closed;
      return f;
    };
    const first = await ask();
    expect(first.type).toBe('snapshot'); // a revision without its database means nothing
    expect(first.cluster).toMatch(/^[0-9a-f-]{36}$/);
    expect((await ask('00000000-0000-0000-0000-000000000000')).type).toBe('snapshot');
    const same = await ask(first.cluster);
    expect(same).toMatchObject({ type: 'diff', upserts: [], deletes: [] });
  });

  it('disconnects a silent agent after the heartbeat timeout', async () => {
    const c = await connect();
    c.ws.send(hello(h1.name, h1.agentToken));
    await c.next();
    expect((await c.closed).code).toBe(4003);
    // the status catches up (flushed every 100 ms)
    const deadline = Date.now() + 5000;
    let connected = true;
    while (connected && Date.now() < deadline) {
      connected = (await t.get(`/hosts/${h1.name}`).expect(200)).body.agent.connected;
      if (connected) await new Promise((r) => setTimeout(r, 50));
    }
    expect(connected).toBe(false);
  });
});
