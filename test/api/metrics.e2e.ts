import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { startController, type TestController } from '../support/controller.js';
import { connectRawAgent } from '../support/raw-agent.js';

/**
 * The metrics are read at scrape time and count what the API counts: a real controller,
 * a real agent process that keeps up, a hand-driven agent that says hello and never
 * acknowledges anything, and a host whose agent never connected. Every comparison is made
 * on the first scrape after the change, with nothing waited for in between.
 */
const dir = mkdtempSync(join(tmpdir(), 'lattice-metrics-'));
let t: TestController;
let agent: AgentProcess;
let silent: WebSocket;
const hosts: Record<string, { id: string; name: string; agentToken: string }> = {};
let network: string;

/** `name{labels} value` lines of the Prometheus text format. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (\S+)$/i.exec(line);
    if (m) out.set(m[1], Number(m[2]));
  }
  return out;
}

const scrape = async () => parse((await t.get('/metrics').expect(200)).text);

/** The API's view of every host (one page holds them all here). */
async function apiHosts() {
  const body = (await t.get('/hosts?limit=1000').expect(200)).body as {
    items: { name: string; inSync: boolean; agent: { connected: boolean; lastSeen: unknown } }[];
  };
  return body.items;
}

/** The host gauges as the API's host list says they must be. */
function expected(items: Awaited<ReturnType<typeof apiHosts>>) {
  const seen = items.filter((h) => h.agent.lastSeen !== null);
  return {
    lattice_hosts_in_sync: items.filter((h) => h.inSync).length,
    lattice_hosts_connected: items.filter((h) => h.agent.connected).length,
    'lattice_hosts{state="in_sync"}': items.filter((h) => h.inSync).length,
    'lattice_hosts{state="lagging"}': seen.filter((h) => !h.inSync).length,
    'lattice_hosts{state="never_connected"}': items.length - seen.length,
  };
}

function gauges(m: Map<string, number>) {
  return Object.fromEntries(
    Object.keys(expected([])).map((k) => [k, m.get(k)] as const),
  ) as ReturnType<typeof expected>;
}

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A hand-driven agent: says hello, reads what it is sent, never acknowledges it. */
async function connectSilent(host: string, token: string) {
  const agent = await connectRawAgent(t.url);
  agent.hello(host, token);
  await agent.next(); // its snapshot, never acknowledged
  return agent.ws;
}

beforeAll(async () => {
  t = await startController({ env: { LATTICE_AGENT_TIMEOUT_MS: '5000' } });
  for (const [i, name] of ['never', 'sync', 'lag'].entries())
    hosts[name] = (
      await t.post('/hosts', { name, underlayIp: `192.0.2.${31 + i}` }).expect(201)
    ).body;
  network = (await t.newNetwork('bridge', '10.31.0.0/24')).name;
  // An instance on each host: every host has a desired revision above 0 to reach.
  for (const h of Object.keys(hosts)) await t.newInstance(network, h);
  agent = spawnAgent({
    url: t.url,
    host: 'sync',
    token: hosts.sync.agentToken,
    stateDir: join(dir, 'sync'),
  });
  silent = await connectSilent('lag', hosts.lag.agentToken);
  await waitFor('the agent of "sync" in sync', async () =>
    (await apiHosts()).some((h) => h.name === 'sync' && h.inSync),
  );
});

afterAll(async () => {
  silent?.close();
  await agent?.stop();
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('host gauges', () => {
  it('count never connected, in sync and lagging hosts as GET /hosts shows them', async () => {
    const items = await apiHosts();
    const m = await scrape();
    expect(
      items.map((h) => [h.name, h.agent.connected, h.agent.lastSeen !== null, h.inSync]),
    ).toEqual([
      ['lag', true, true, false],
      ['never', false, false, false],
      ['sync', true, true, true],
    ]);
    expect(gauges(m)).toEqual(expected(items));
    expect(gauges(m)).toEqual({
      lattice_hosts_in_sync: 1,
      lattice_hosts_connected: 2,
      'lattice_hosts{state="in_sync"}': 1,
      'lattice_hosts{state="lagging"}': 1,
      'lattice_hosts{state="never_connected"}': 1,
    });
  });

  it('follow a change on the first scrape: applied (live, before the status is saved)', async () => {
    // The agent's ack is known live at once; the table has it only at the next status
    // flush (100 ms): the scrape counts the live status, as the API does.
    for (let i = 0; i < 5; i++) {
      const created = (
        await t
          .post(`/instances?wait=applied`, { name: `s${i}`, network, host: 'sync' })
          .expect(201)
      ).body;
      const [items, m] = await Promise.all([apiHosts(), scrape()]);
      expect(items.find((h) => h.name === 'sync')!.inSync).toBe(true);
      expect(gauges(m)).toEqual(expected(items));
      expect(m.get('lattice_revision')).toBe(created.revision);
      expect(m.get('lattice_objects{kind="instances"}')).toBe(3 + i + 1);
    }
  });

  it('follow a change on the first scrape: a host falls behind, then one never seen is gone', async () => {
    const created = (
      await t.post('/instances', { name: 'late', network, host: 'never' }).expect(201)
    ).body;
    let m = await scrape();
    let items = await apiHosts();
    expect(gauges(m)).toEqual(expected(items));
    expect(m.get('lattice_revision')).toBe(created.revision);

    // The silent agent goes away: its host stays lagging (it reported once), disconnected.
    silent.close();
    await waitFor('the agent of "lag" disconnected', async () =>
      (await apiHosts()).some((h) => h.name === 'lag' && !h.agent.connected),
    );
    [items, m] = [await apiHosts(), await scrape()];
    expect(gauges(m)).toEqual(expected(items));
    expect(m.get('lattice_hosts_connected')).toBe(1);
    expect(m.get('lattice_hosts{state="lagging"}')).toBe(1);

    await t.del('/instances/late').expect(200);
    await t
      .del('/instances/' + (await t.get('/instances?host=never').expect(200)).body.items[0].name)
      .expect(200);
    await t.del('/hosts/never').expect(200);
    [m, items] = [await scrape(), await apiHosts()];
    expect(gauges(m)).toEqual(expected(items));
    expect(m.get('lattice_hosts{state="never_connected"}')).toBe(0);
    expect(m.get('lattice_objects{kind="hosts"}')).toBe(2);
  });
});
