import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { startController, sql, VIEWER_TOKEN, type TestController } from '../support/controller.js';
import { connectRawAgent, helloFrame } from '../support/raw-agent.js';

/**
 * Join tokens end to end: the API that makes and revokes them, and real agent processes
 * that join with one, keep their agent token and come back as the same host.
 */
const BOOTSTRAP = 'bootstrap-join-token-0123456789';
let t: TestController;
let dir: string;
const running: AgentProcess[] = [];

beforeAll(async () => {
  t = await startController({
    env: { LATTICE_JOIN_TOKEN: BOOTSTRAP, LATTICE_JOIN_TOKEN_USES: '2' },
  });
  dir = mkdtempSync(join(tmpdir(), 'lattice-join-'));
});
afterAll(async () => {
  await Promise.all(running.map((a) => a.stop()));
  await t.close();
  rmSync(dir, { recursive: true, force: true });
});

const join$ = (token: string | undefined, body: Record<string, unknown>) => {
  const r = request(t.url).post('/api/v1/join').send(body);
  return token === undefined ? r : r.set('authorization', `Bearer ${token}`);
};
let ip = 100;
const nextIp = () => `192.0.2.${++ip}`;

async function newJoinToken(body: Record<string, unknown> = {}) {
  const res = await t.post('/join-tokens', body).expect(201);
  return res.body as { id: string; name: string; token: string };
}

function tokenFile(token: string): string {
  const f = join(dir, `jt-${Math.random().toString(36).slice(2)}`);
  writeFileSync(f, token + '\n', { mode: 0o600 });
  return f;
}

function agent(host: string, stateDir: string, args: string[]): AgentProcess {
  const a = spawnAgent({ url: t.url, host, stateDir, args });
  running.push(a);
  return a;
}

/** Resolves with the exit code of an agent process that is expected to end by itself. */
const exitCode = (a: AgentProcess) =>
  new Promise<number | null>((ok) =>
    a.proc.exitCode !== null ? ok(a.proc.exitCode) : a.proc.once('exit', (c) => ok(c)),
  );

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('join tokens: the API', () => {
  it('creates a token shown once, lists and gets it without the secret, by id or name', async () => {
    const created = await t
      .post('/join-tokens', {
        name: 'rack-7',
        ttlSeconds: 3600,
        maxUses: 5,
        labels: { rack: 'r7' },
      })
      .expect(201);
    expect(created.body).toMatchObject({
      name: 'rack-7',
      maxUses: 5,
      uses: 0,
      state: 'active',
      allowRejoin: false,
      labels: { rack: 'r7' },
      revokedAt: null,
    });
    expect(created.body.token).toMatch(/^ljt_[A-Za-z0-9_-]{43}$/);
    const ttl = Date.parse(created.body.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(3500_000);
    expect(ttl).toBeLessThanOrEqual(3600_000);
    const byName = (await t.get('/join-tokens/rack-7').expect(200)).body;
    const byId = (await t.get(`/join-tokens/${created.body.id}`).expect(200)).body;
    expect(byId).toEqual(byName);
    expect(byName.token).toBeUndefined();
    const list = (await t.get('/join-tokens').expect(200)).body.items;
    expect(list.map((x: { name: string }) => x.name)).toContain('rack-7');
    expect(JSON.stringify(list)).not.toContain(created.body.token);
    // only the hash is stored
    const rows = await sql(
      t.databaseUrl,
      `SELECT token_hash FROM join_tokens WHERE name = 'rack-7'`,
    );
    expect(rows[0].token_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(rows[0].token_hash).not.toContain(created.body.token);
  });

  it('refuses bad input with the field named, a taken name with a 409, the viewer with a 403', async () => {
    const bad = await t.post('/join-tokens', { ttlSeconds: 5, maxUses: 0, extra: 1 }).expect(400);
    expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual([
      'extra',
      'maxUses',
      'ttlSeconds',
    ]);
    await t.post('/join-tokens', { name: 'dup' }).expect(201);
    const dup = await t.post('/join-tokens', { name: 'dup' }).expect(409);
    expect(dup.body.message).toMatch(/join token with this name/);
    await t.post('/join-tokens', {}, VIEWER_TOKEN).expect(403);
    await t.get('/join-tokens', VIEWER_TOKEN).expect(200);
    await t.get('/join-tokens/no-such').expect(404);
    await t.del('/join-tokens/no-such').expect(404);
  });

  it('installs LATTICE_JOIN_TOKEN at start as "bootstrap"', async () => {
    const b = (await t.get('/join-tokens/bootstrap').expect(200)).body;
    expect(b).toMatchObject({ maxUses: 2, uses: 0, state: 'active', allowRejoin: false });
    const res = await join$(BOOTSTRAP, { name: 'boot1', underlayIp: nextIp() }).expect(201);
    expect(res.body).toMatchObject({ name: 'boot1', joinToken: 'bootstrap', rejoined: false });
  });
});

describe('joining', () => {
  it('answers 401 without a join token or with an API token, 400 for a bad body', async () => {
    const none = await join$(undefined, { name: 'x1', underlayIp: nextIp() }).expect(401);
    expect(none.body.message).toMatch(/missing join token/);
    const admin = await join$('test-admin-token-0123456789', { name: 'x1', underlayIp: nextIp() });
    expect(admin.status).toBe(401);
    expect(admin.body.message).toMatch(/not a join token/);
    const { token } = await newJoinToken();
    const bad = await join$(token, { name: 'X_1', underlayIp: '10.0.0' }).expect(400);
    expect(bad.body.details.map((d: { field: string }) => d.field).sort()).toEqual([
      'name',
      'underlayIp',
    ]);
    // a refused body did not use the token
    const jt = (await t.get('/join-tokens').expect(200)).body.items.find(
      (x: { uses: number; maxUses: number; name: string }) => x.uses === 0 && x.maxUses === 1,
    );
    expect(jt).toBeDefined();
  });

  it('registers the host of a real agent, which keeps its token and is the same host after a restart', async () => {
    const jt = await newJoinToken({ maxUses: 2, labels: { rack: 'r7' } });
    const stateDir = join(dir, 'jh1');
    const underlay = nextIp();
    const a = agent('jh1', stateDir, [
      '--join-token-file',
      tokenFile(jt.token),
      '--underlay-ip',
      underlay,
      '--label',
      'zone=a',
    ]);
    await a.waitFor(/joined as host jh1/);
    await a.waitFor(/applied revision/);
    const host = (await t.get('/hosts/jh1').expect(200)).body;
    expect(host).toMatchObject({
      underlayIp: underlay,
      labels: { rack: 'r7', zone: 'a' },
      agent: { connected: true },
    });
    expect(statSync(join(stateDir, 'agent-token')).mode & 0o777).toBe(0o600);
    expect((await t.get(`/join-tokens/${jt.id}`).expect(200)).body).toMatchObject({ uses: 1 });

    // Restarted, with its join token revoked meanwhile: it needs none, it is the same host.
    await a.stop();
    await t.del(`/join-tokens/${jt.id}`).expect(200);
    const again = agent('jh1', stateDir, ['--join-token-file', tokenFile(jt.token)]);
    await again.waitFor(/using the agent token stored/);
    await again.waitFor(/applied revision/);
    const after = (await t.get('/hosts/jh1').expect(200)).body;
    expect(after.id).toBe(host.id);
    expect(after.agent.connected).toBe(true);
    expect((await t.get(`/join-tokens/${jt.id}`).expect(200)).body).toMatchObject({
      uses: 1,
      state: 'revoked',
    });
    await again.stop();
  });

  it('counts uses exactly under concurrent joins, then refuses with "used up"', async () => {
    const jt = await newJoinToken({ maxUses: 3 });
    const results = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((i) => join$(jt.token, { name: `cc${i}`, underlayIp: nextIp() })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 201, 401, 401, 401]);
    for (const r of results.filter((r) => r.status === 401))
      expect(r.body.message).toMatch(/has been used 3 of 3 times/);
    expect((await t.get(`/join-tokens/${jt.id}`).expect(200)).body).toMatchObject({
      uses: 3,
      state: 'used-up',
    });
    // an agent with the used-up token exits 2 with the controller's word
    const a = agent('cc9', join(dir, 'cc9'), [
      '--join-token-file',
      tokenFile(jt.token),
      '--underlay-ip',
      nextIp(),
    ]);
    expect(await exitCode(a)).toBe(2);
    expect(a.output.join('\n')).toMatch(/refused the join: HTTP 401: .*used 3 of 3/);
  });

  it('refuses an expired or a revoked token, saying which', async () => {
    const expired = await newJoinToken({ maxUses: 5 });
    await sql(
      t.databaseUrl,
      `UPDATE join_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`,
      [expired.id],
    );
    const e = await join$(expired.token, { name: 'ex1', underlayIp: nextIp() }).expect(401);
    expect(e.body.message).toMatch(/expired at/);
    expect((await t.get(`/join-tokens/${expired.id}`).expect(200)).body.state).toBe('expired');

    const revoked = await newJoinToken({ maxUses: 5 });
    const r1 = await t.del(`/join-tokens/${revoked.name}`).expect(200);
    expect(r1.body).toMatchObject({ revoked: true, state: 'revoked' });
    // revoking again changes nothing
    const r2 = await t.del(`/join-tokens/${revoked.name}`).expect(200);
    expect(r2.body.revokedAt).toBe(r1.body.revokedAt);
    const r = await join$(revoked.token, { name: 'rv1', underlayIp: nextIp() }).expect(401);
    expect(r.body.message).toMatch(/was revoked/);
    const a = agent('rv2', join(dir, 'rv2'), [
      '--join-token-file',
      tokenFile(revoked.token),
      '--underlay-ip',
      nextIp(),
    ]);
    expect(await exitCode(a)).toBe(2);
    expect((await t.get('/hosts/rv1')).status).toBe(404);
  });

  it('refuses a name taken by a host whose agent connected; takes over one no agent used', async () => {
    const jt = await newJoinToken({ maxUses: 10 });
    // jh1 joined and connected above
    const taken = await join$(jt.token, { name: 'jh1', underlayIp: nextIp() }).expect(409);
    expect(taken.body.message).toMatch(/host "jh1" is registered and its agent has connected/);
    // pre-registered by an admin, never connected: the join takes it, with a new token
    const pre = await t.newHost({ labels: { role: 'edge' } });
    const joined = await join$(jt.token, { name: pre.name, underlayIp: nextIp() }).expect(201);
    expect(joined.body).toMatchObject({ id: pre.id, rejoined: true, labels: { role: 'edge' } });
    const old = await connectRawAgent(t.url);
    old.ws.send(helloFrame(pre.name, pre.agentToken));
    expect((await old.closed).code).toBe(1008);
    // an underlay IP another host holds is a 409 too, and uses nothing
    const before = (await t.get(`/join-tokens/${jt.id}`).expect(200)).body.uses;
    await join$(jt.token, { name: 'ip-taken', underlayIp: joined.body.underlayIp }).expect(409);
    expect((await t.get(`/join-tokens/${jt.id}`).expect(200)).body.uses).toBe(before);
  });

  it('lets a host re-join under its name with a token that allows it; the old agent token stops working', async () => {
    const first = await newJoinToken();
    const stateDir = join(dir, 'rj1');
    const a = agent('rj1', stateDir, [
      '--join-token-file',
      tokenFile(first.token),
      '--underlay-ip',
      nextIp(),
    ]);
    await a.waitFor(/applied revision/);
    const host = (await t.get('/hosts/rj1').expect(200)).body;
    // its state directory is lost (a rebuilt machine): it joins again, at a new address
    await a.stop();
    rmSync(stateDir, { recursive: true, force: true });
    const rejoin = await newJoinToken({ allowRejoin: true });
    const newIp = nextIp();
    const b = agent('rj1', stateDir, [
      '--join-token-file',
      tokenFile(rejoin.token),
      '--underlay-ip',
      newIp,
    ]);
    await b.waitFor(/joined as host rj1 .*re-joined/);
    await b.waitFor(/applied revision/);
    const after = (await t.get('/hosts/rj1').expect(200)).body;
    expect(after).toMatchObject({ id: host.id, underlayIp: newIp });
    await until('rj1 connected', async () => (await t.get('/hosts/rj1')).body.agent.connected);
    await b.stop();
  });
});
