import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Response } from 'supertest';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { startController, type TestController } from '../support/controller.js';

/**
 * Two controller replicas on one PostgreSQL, writes going through both at once, agents
 * connected to each: afterwards every agent's applied state equals the desired state that
 * a freshly started replica computes from the database alone.
 */
const ENV = { LATTICE_AGENT_TIMEOUT_MS: '5000', LATTICE_HELLO_TIMEOUT_MS: '2000' };
const dir = mkdtempSync(join(tmpdir(), 'lattice-replicas-'));
let a: TestController;
let b: TestController;
const agents = new Map<string, AgentProcess>();
const HOSTS = ['rp1', 'rp2', 'rp3', 'rp4'];

const byKey = (rs: { key: string }[]) => [...rs].sort((x, y) => (x.key < y.key ? -1 : 1));

beforeAll(async () => {
  a = await startController({ env: ENV });
  b = await startController({ env: ENV, databaseUrl: a.databaseUrl });
  for (const [i, name] of HOSTS.entries()) {
    const host = (await a.post('/hosts', { name, underlayIp: `192.0.2.${41 + i}` }).expect(201))
      .body;
    // rp1, rp2 on replica a; rp3, rp4 on replica b
    const via = i < 2 ? a : b;
    const agent = spawnAgent({
      url: via.url,
      host: name,
      token: host.agentToken,
      stateDir: join(dir, name),
    });
    agents.set(name, agent);
  }
  for (const agent of agents.values()) await agent.waitFor(/applied revision/);
});

afterAll(async () => {
  await Promise.all([...agents.values()].map((x) => x.stop()));
  await b?.close();
  await a?.close();
  rmSync(dir, { recursive: true, force: true });
});

const ok = (r: Response) => {
  if (r.status >= 300) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
  return r;
};

/** Polls until every agent holds exactly what a fresh replica computes for its host. */
async function expectAgentsMatchFreshReplica(timeoutMs = 20_000) {
  const fresh = await startController({ env: ENV, databaseUrl: a.databaseUrl });
  try {
    const want = new Map<string, unknown>();
    for (const h of HOSTS) {
      want.set(h, byKey((await fresh.get(`/hosts/${h}/desired-state`).expect(200)).body.resources));
    }
    // the live replicas agree with the fresh one
    for (const replica of [a, b]) {
      for (const h of HOSTS) {
        const got = (await replica.get(`/hosts/${h}/desired-state`).expect(200)).body.resources;
        expect({ h, resources: byKey(got) }).toEqual({ h, resources: want.get(h) });
      }
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mismatched = HOSTS.filter(
        (h) => JSON.stringify(byKey(agents.get(h)!.applied())) !== JSON.stringify(want.get(h)),
      );
      if (mismatched.length === 0) break;
      if (Date.now() > deadline) {
        for (const h of mismatched) {
          expect({ h, resources: byKey(agents.get(h)!.applied()) }).toEqual({
            h,
            resources: want.get(h),
          });
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await fresh.close();
  }
}

describe('two replicas, writes through both, agents on each', () => {
  it('leave every agent with the state a fresh replica computes', async () => {
    await a.post('/networks', { name: 'rv', model: 'overlay', cidr: '10.60.0.0/24' }).expect(201);
    await b.post('/networks', { name: 'rf', model: 'fabric', cidr: '10.61.0.0/24' }).expect(201);
    await a
      .post('/networks', {
        name: 'rr',
        model: 'routed',
        routing: 'static',
        cidr: '10.62.0.0/22',
        blockPrefixLen: 28,
      })
      .expect(201);
    const nets = ['rv', 'rf', 'rr'];

    // 1. creates through both replicas at once, a router attached and a host changed meanwhile
    const creates: Promise<Response>[] = [];
    for (let i = 0; i < 60; i++) {
      const via = i % 2 === 0 ? a : b;
      creates.push(
        via
          .post('/instances', { name: `rp-${i}`, network: nets[i % 3], host: HOSTS[i % 4] })
          .then(ok),
      );
      if (i === 20)
        creates.push(a.post('/routers', { name: 'rt', networks: ['rv', 'rr'] }).then(ok));
      if (i === 30) creates.push(b.patch('/hosts/rp2', { labels: { zone: 'z2' } }).then(ok));
      if (i === 40)
        creates.push(
          b
            .post('/instances/bulk', {
              instances: Array.from({ length: 20 }, (_, k) => ({
                name: `rp-bulk-${k}`,
                network: nets[k % 3],
                host: HOSTS[(k + 1) % 4],
              })),
            })
            .then(ok),
        );
    }
    await Promise.all(creates);
    await expectAgentsMatchFreshReplica();

    // 2. deletes and moves through the replica that did not create them, at once
    const changes: Promise<Response>[] = [];
    for (let i = 0; i < 60; i++) {
      const other = i % 2 === 0 ? b : a;
      if (i % 3 === 2) continue; // routed: block-based, cannot move; deleted below
      if (i % 4 < 2) changes.push(other.del(`/instances/rp-${i}`).then(ok));
      else changes.push(other.patch(`/instances/rp-${i}`, { host: HOSTS[(i + 1) % 4] }).then(ok));
    }
    for (let i = 2; i < 60; i += 6)
      changes.push((i % 4 === 0 ? a : b).del(`/instances/rp-${i}`).then(ok));
    changes.push(a.patch('/routers/rt', { networks: ['rv', 'rf', 'rr'] }).then(ok));
    await Promise.all(changes);
    await expectAgentsMatchFreshReplica();

    // every host is reported in sync by both replicas
    for (const replica of [a, b]) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const hosts = (await replica.get('/hosts').expect(200)).body.items as {
          name: string;
          inSync: boolean;
        }[];
        if (hosts.every((h) => h.inSync) || Date.now() > deadline) {
          expect(hosts.filter((h) => !h.inSync).map((h) => h.name)).toEqual([]);
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
});
