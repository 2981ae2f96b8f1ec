import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import request from 'supertest';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import {
  startController,
  VIEWER_TOKEN,
  ADMIN_TOKEN,
  type TestController,
} from '../support/controller.js';

/**
 * The dashboard in a real headless Chromium (the system's, never a downloaded one), against
 * a real controller and real agent processes. Screenshots of every view go to
 * test-output/dashboard/.
 */
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .filter((p): p is string => !!p)
  .find((p) => existsSync(p));
if (!CHROMIUM && process.env.CI)
  throw new Error('CI: no Chromium binary (install the chromium package)');
if (!CHROMIUM)
  console.warn(
    'dashboard browser tests skipped: no Chromium binary (apt-get install chromium, or set CHROMIUM_PATH)',
  );

const SHOTS = resolve('test-output/dashboard');
const ENV = { LATTICE_AGENT_TIMEOUT_MS: '3000', LATTICE_HELLO_TIMEOUT_MS: '1000' };
const dir = mkdtempSync(join(tmpdir(), 'lattice-dash-'));
let t: TestController;
let browser: Browser;
let page: Page;
const hosts: Record<string, { name: string; agentToken: string }> = {};
const agents: Record<string, AgentProcess> = {};
const start = (h: string) =>
  (agents[h] = spawnAgent({
    url: t.url,
    host: h,
    token: hosts[h].agentToken,
    stateDir: join(dir, h),
  }));
const shot = (name: string) =>
  page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
const show = async (view: string) => {
  await page.click(`nav a[data-view="${view}"]`);
  await page.waitForSelector(`[data-testid="view-${view}"]`);
};
const hostState = (h: string) =>
  page.locator(`tr[data-host="${h}"]`).getAttribute('data-state', { timeout: 2000 });
async function until(f: () => Promise<boolean>, what: string, ms = 20_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

(CHROMIUM ? describe : describe.skip)('dashboard in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    t = await startController({ env: ENV });
    for (const [i, name] of ['d1', 'd2', 'd3'].entries()) {
      hosts[name] = (
        await t.post('/hosts', { name, underlayIp: `192.0.2.${41 + i}` }).expect(201)
      ).body;
    }
    await t.post('/networks', { name: 'blue', model: 'overlay', cidr: '10.20.0.0/24' }).expect(201);
    await t.post('/networks', { name: 'red', model: 'vlan', cidr: '10.21.0.0/24' }).expect(201);
    await t.post('/networks', { name: 'green', model: 'bridge', cidr: '10.22.0.0/24' }).expect(201);
    await t.post('/routers', { name: 'core', networks: ['blue', 'red'] }).expect(201);
    for (const [name, network, host] of [
      ['web1', 'blue', 'd1'],
      ['web2', 'blue', 'd2'],
      ['db1', 'red', 'd3'],
      ['db2', 'red', 'd1'],
      ['solo', 'green', 'd2'],
    ])
      await t.post('/instances', { name, network, host }).expect(201);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all(Object.values(agents).map((a) => a.stop()));
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page to a browser and still JSON to scripts', async () => {
    const json = await request(t.url).get('/').set('accept', 'application/json').expect(200);
    expect(json.body.name).toBe('Lattice');
    const html = await request(t.url).get('/').set('accept', 'text/html').expect(200);
    expect(html.text).toContain('/ui/app.js');
    await request(t.url)
      .get('/ui/app.js')
      .expect(200)
      .expect('content-type', /javascript/);
  });

  it('signs in with the admin token (kept out of the address) and shows the fleet connecting', async () => {
    await page.goto(t.url);
    await page.fill('input[name="token"]', 'not-a-token-at-all');
    await page.click('button[type="submit"]');
    await page.waitForSelector('.signin .error');
    await shot('01-sign-in');
    await page.fill('input[name="token"]', ADMIN_TOKEN);
    await page.click('button[type="submit"]');
    await page.waitForSelector('[data-testid="view-fleet"] tr[data-host="d1"]');
    expect(page.url()).not.toContain(ADMIN_TOKEN);
    expect(await page.textContent('[data-testid="role"]')).toContain('admin');
    for (const h of Object.keys(hosts)) expect(await hostState(h)).toBe('disconnected');
    // Agents start after the page is open: the fleet view follows without a reload.
    for (const h of Object.keys(hosts)) start(h);
    for (const h of Object.keys(hosts))
      await until(async () => (await hostState(h)) === 'in-sync', `${h} in sync in the page`);
    await shot('02-fleet');
  });

  it('shows an instance created through REST without a reload', async () => {
    await show('instances');
    await page.waitForSelector('tr[data-instance="web1"]');
    await t.post('/instances', { name: 'late1', network: 'blue', host: 'd3' }).expect(201);
    await page.waitForSelector('tr[data-instance="late1"]', { timeout: 15_000 });
    expect(await page.locator('button[data-action="delete"]').count()).toBeGreaterThan(0);
    await page.fill('input[name="q"]', 'db2');
    await page.press('input[name="q"]', 'Enter');
    await until(
      async () => (await page.locator('[data-testid="instances"] tbody tr').count()) === 1,
      'search',
    );
    expect(await page.textContent('[data-testid="instances"] tbody')).toContain('10.21.0.');
    await shot('04-instances');
    await page.fill('input[name="q"]', '');
    await page.press('input[name="q"]', 'Enter');
  });

  it('shows a host go out of sync when its agent stops, and back when it returns', async () => {
    await show('fleet');
    await agents.d2.stop();
    // A change for d2 while its agent is away: desired moves on, applied stays behind.
    await t.post('/instances', { name: 'away1', network: 'blue', host: 'd2' }).expect(201);
    await until(async () => (await hostState('d2')) === 'disconnected', 'd2 disconnected');
    const row = page.locator('tr[data-host="d2"]');
    await until(
      async () => Number(await row.locator('td').nth(6).textContent()) > 0,
      'd2 lagging behind its desired revision',
    );
    await shot('03-fleet-agent-down');
    start('d2');
    await until(async () => (await hostState('d2')) === 'in-sync', 'd2 back in sync');
    expect(await row.locator('td').nth(6).textContent()).toBe('0');
  });

  it('shows networks by model, routers and pools', async () => {
    await show('networks');
    await page.waitForSelector('[data-testid="networks-overlay"] tr[data-network="blue"]');
    await until(
      async () => (await page.locator('tr[data-network="blue"] td').nth(5).textContent()) === '4',
      'blue counts 4 instances',
    );
    expect(await page.locator('tr[data-network="blue"] td').nth(6).textContent()).toBe('3');
    expect(await page.locator('tr[data-network="red"] td').nth(2).textContent()).toMatch(
      /^VLAN \d+$/,
    );
    expect(await page.locator('tr[data-network="blue"] td').nth(2).textContent()).toMatch(
      /^VNI \d+$/,
    );
    await shot('05-networks');
    await show('routers');
    expect(await page.textContent('tr[data-router="core"]')).toContain('blue');
    await shot('06-routers');
    await show('pools');
    expect(await page.textContent('[data-pool="vlan"]')).toMatch(/1\s*used/);
    await shot('07-pools');
  });

  it('draws the topology and expands a network on click', async () => {
    await show('topology');
    await page.waitForSelector('[data-testid="topology"] canvas');
    await page.waitForTimeout(800);
    await shot('08-topology');
    // Expanding a network (a click on its node, or the select beside the picture).
    await page.selectOption('select[name="expand"]', 'blue');
    await page.waitForSelector('button[data-action="overview"]');
    await page.waitForTimeout(800);
    await shot('08b-topology-blue');
    await page.click('button[data-action="overview"]');
  });

  it('charts convergence', async () => {
    await show('convergence');
    await page.waitForSelector('[data-testid="convergence"] canvas');
    await t.post('/instances', { name: 'conv1', network: 'blue', host: 'd1' }).expect(201);
    await page.waitForTimeout(1500);
    await shot('09-convergence');
  });

  it('runs a trace in the page and reads its verdict', async () => {
    const probe = await request(t.url)
      .get('/api/v1/trace?from=web1&to=web2')
      .set('authorization', `Bearer ${ADMIN_TOKEN}`);
    await show('trace');
    if (probe.status === 404 && !/instance/i.test(JSON.stringify(probe.body))) {
      console.warn('dashboard trace case skipped: this controller has no GET /api/v1/trace yet');
      return;
    }
    await page.fill('input[name="from"]', 'web1');
    await page.fill('input[name="to"]', 'web2');
    await page.click('[data-testid="trace-form"] button[type="submit"]');
    await page.waitForSelector('[data-testid="verdict"]');
    // web1 → web2: one overlay network, two hosts.
    expect(await page.textContent('[data-testid="verdict"]')).toContain('delivered');
    expect(await page.locator('[data-testid="hops"] li').count()).toBeGreaterThan(1);
    await shot('10-trace');
    // web1 → solo: a bridge network no router reaches.
    await page.fill('input[name="to"]', 'solo');
    await page.click('[data-testid="trace-form"] button[type="submit"]');
    await until(
      async () => /dropped/.test((await page.textContent('[data-testid="verdict"]')) ?? ''),
      'a dropped verdict',
    );
    expect(await page.locator('[data-testid="hops"] li.drop').count()).toBe(1);
    await shot('11-trace-dropped');
  });

  it('shows everything read-only to the viewer token', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const p = await ctx.newPage();
    await p.goto(t.url);
    await p.fill('input[name="token"]', VIEWER_TOKEN);
    await p.click('button[type="submit"]');
    await p.waitForSelector('tr[data-host="d1"]');
    expect(await p.textContent('[data-testid="role"]')).toContain('viewer');
    await p.click('nav a[data-view="instances"]');
    await p.waitForSelector('tr[data-instance="web1"]');
    expect(await p.locator('button[data-action="delete"]').count()).toBe(0);
    // The token lives in the tab's session, not in the address or a cookie.
    expect(p.url()).not.toContain(VIEWER_TOKEN);
    expect(await ctx.cookies()).toEqual([]);
    expect(
      await p.evaluate(() => (globalThis as any).sessionStorage.getItem('lattice.token')),
    ).toBe(VIEWER_TOKEN);
    await p.screenshot({ path: join(SHOTS, '12-viewer-instances.png'), fullPage: true });
    await ctx.close();
  });

  it('stays live by polling REST when the event stream is unavailable', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    // No WebSocket in this page: the dashboard must fall back to polling.
    await ctx.addInitScript(() => {
      (globalThis as any).WebSocket = class {
        constructor() {
          throw new Error('no WebSocket here');
        }
      };
    });
    const p = await ctx.newPage();
    await p.goto(t.url);
    await p.fill('input[name="token"]', VIEWER_TOKEN);
    await p.click('button[type="submit"]');
    await p.waitForSelector('tr[data-host="d1"]');
    expect(await p.textContent('[data-testid="link"]')).toContain('polling');
    await p.click('nav a[data-view="instances"]');
    await p.waitForSelector('tr[data-instance="web1"]');
    await t.post('/instances', { name: 'polled1', network: 'red', host: 'd2' }).expect(201);
    await p.waitForSelector('tr[data-instance="polled1"]', { timeout: 15_000 });
    await p.click('nav a[data-view="fleet"]');
    await agents.d3.stop();
    await p.waitForSelector('tr[data-host="d3"][data-state="disconnected"]', { timeout: 15_000 });
    start('d3');
    await p.waitForSelector('tr[data-host="d3"][data-state="in-sync"]', { timeout: 20_000 });
    await p.screenshot({ path: join(SHOTS, '13-fleet-polling.png'), fullPage: true });
    await ctx.close();
  });
});
