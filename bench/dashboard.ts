/**
 * Dashboard benchmark: the system of bench:converge (the built controller in a child process
 * on an embedded PostgreSQL, the agent fleet in another; bench/fleet-setup.ts) preloaded to a
 * BENCH.md shape, then the dashboard in headless system Chromium (playwright-core; never a
 * downloaded browser):
 *   1. first useful render: sign-in submitted → the counts bar shows every host, every host in
 *      sync and every instance, and the fleet table has its rows;
 *   2. each view (networks, instances, topology) → its content drawn (for the topology also
 *      the network × host breakdown it scans);
 *   3. REST create (`POST /api/v1/instances`, no wait) → the counts bar's instance count shows
 *      it, one at a time: median and p99.
 *
 *   npm run bench:dashboard -- [--shape small|mid|large] [--creates 20] [--max-minutes 30]
 *
 * Prints a table and writes bench/results/dashboard-<shape>.json (partial, with the error,
 * when a run fails).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { benchCli } from './cli.js';
import {
  ADMIN_TOKEN,
  api,
  gitInfo,
  instanceSpec,
  latency,
  mb,
  now,
  preloadShape,
  RESULTS,
  BenchRun,
  ROOT,
  round,
  SHAPES,
  startSystem,
  type LatencyStats,
  type PreloadStats,
  type ShapeName,
} from './fleet-setup.js';

const USAGE = `usage: npm run bench:dashboard -- [options]
  --shape small|mid|large   BENCH.md shape (spread layout); default large
  --creates N               REST creates timed to their appearance in the page; default 20
  --max-minutes N           stop the whole run (writing what was measured) after this; default 30
  --label TEXT              a note kept in the JSON
  -h, --help, -V, --version
Chromium: CHROMIUM_PATH, else /usr/bin/chromium.`;

const { values: argv, usageError } = benchCli('bench:dashboard', USAGE, {
  shape: { type: 'string', default: 'large' },
  creates: { type: 'string', default: '20' },
  'max-minutes': { type: 'string', default: '30' },
  label: { type: 'string' },
});
function int(name: string, raw: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) usageError(`--${name} must be an integer from ${min}`);
  return n;
}
if (!(argv.shape in SHAPES)) usageError(`--shape must be one of ${Object.keys(SHAPES).join(', ')}`);
const SHAPE = argv.shape as ShapeName;
const shape = { ...SHAPES[SHAPE], layout: 'spread' as const };
const CREATES = int('creates', argv.creates, 0);
const MAX_MINUTES = int('max-minutes', argv['max-minutes'], 1);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEM = `dashboard-${SHAPE}`;

interface Results {
  benchmark: 'dashboard';
  shape: string;
  counts: { hosts: number; networks: number; instances: number };
  options: { creates: number };
  label?: string;
  startedAt: string;
  finishedAt?: string;
  node: string;
  chromium: string;
  cpus: number;
  memoryMB: number;
  git: ReturnType<typeof gitInfo>;
  phase: string;
  preload?: PreloadStats;
  /** ms from the sign-in submitted */
  firstRender?: { fleetRowsMs: number; countsMs: number };
  /** ms from the navigation click */
  views?: Record<string, number>;
  createToPage?: LatencyStats & { restMs: LatencyStats };
  error?: string;
}

const results: Results = {
  benchmark: 'dashboard',
  shape: SHAPE,
  counts: { hosts: shape.H, networks: shape.S, instances: shape.P },
  options: { creates: CREATES },
  ...(argv.label ? { label: argv.label } : {}),
  startedAt: new Date().toISOString(),
  node: process.version,
  chromium: CHROMIUM,
  cpus: cpus().length,
  memoryMB: mb(totalmem()),
  git: gitInfo(),
  phase: 'setup',
};

const run = new BenchRun('bench:dashboard', STEM, results);
const { cleanups } = run;
const phase = (name: string) => run.phase(name);

/** In the page (which the benchmark's own types do not know): the counts bar's figures. */
const COUNTS_BAR = `[...document.querySelectorAll('[data-testid="counts"] b')].map((b) => Number(b.textContent))`;

/** The counts bar's figures: hosts, connected, in sync, networks, instances, routers. */
function countsBar(page: Page): Promise<number[]> {
  return page.evaluate<number[]>(COUNTS_BAR);
}

/** Waits (polling every animation frame) until the counts bar's instance count is `n`. */
async function waitInstances(page: Page, n: number, timeout: number): Promise<void> {
  await page.waitForFunction(`${COUNTS_BAR}[4] >= ${n}`, undefined, { polling: 'raf', timeout });
}

async function main(): Promise<void> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `no Chromium at ${CHROMIUM}: install the system's chromium or set CHROMIUM_PATH`,
    );
  mkdirSync(RESULTS, { recursive: true });
  const ctlLog = join(RESULTS, `${STEM}.controller.log`);
  const fleetLog = join(RESULTS, `${STEM}.fleet.log`);
  writeFileSync(ctlLog, '');
  writeFileSync(fleetLog, '');
  const { H, S, P } = shape;
  console.log(
    `bench:dashboard shape ${SHAPE} (${H} hosts, ${S} networks, ${P} instances), spread layout, ` +
      `node ${process.version}, ${cpus().length} cpus`,
  );
  const sys = await startSystem(ctlLog, cleanups);
  cleanups.push(() => sys.ctl.stop());

  phase('preload');
  const preload: PreloadStats = {
    hostsMs: 0,
    networksMs: 0,
    agentsConnectedMs: 0,
    instancesMs: 0,
    instancesPerSec: 0,
    allInSyncAfterMs: 0,
  };
  await preloadShape(
    shape,
    sys,
    fleetLog,
    { heartbeatMs: 10_000, backoffMinMs: 100, backoffMaxMs: 2000 },
    cleanups,
    preload,
  ).finally(() => (results.preload = { ...preload }));

  phase('1. first useful render');
  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox'],
  });
  cleanups.push(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(`http://127.0.0.1:${sys.port}/`);
  await page.fill('input[name="token"]', ADMIN_TOKEN);
  const signIn = now();
  await page.click('button[type="submit"]');
  await page.waitForSelector('[data-testid="view-fleet"] tr[data-host]', { timeout: 300_000 });
  const fleetRowsMs = now() - signIn;
  await page.waitForFunction(
    `((b) => b[0] === ${H} && b[2] === ${H} && b[4] === ${P})(${COUNTS_BAR})`,
    undefined,
    { polling: 'raf', timeout: 300_000 },
  );
  const countsMs = now() - signIn;
  results.firstRender = { fleetRowsMs: round(fleetRowsMs), countsMs: round(countsMs) };
  // Each view as an operator sees it at this shape (after it was timed).
  const shots = join(ROOT, 'test-output', `dashboard-${SHAPE}`);
  mkdirSync(shots, { recursive: true });
  const shot = (name: string) => page.screenshot({ path: join(shots, `${name}.png`) });
  await shot('1-fleet');
  console.log(
    `fleet rows after ${Math.round(fleetRowsMs)} ms, counts bar complete (${H} hosts in sync, ${P} instances) after ${Math.round(countsMs)} ms`,
  );

  phase('2. views');
  const views: Record<string, number> = {};
  results.views = views;
  const open = async (view: string, ready: () => Promise<unknown>) => {
    const t0 = now();
    await page.click(`nav a[data-view="${view}"]`);
    await ready();
    views[view] = round(now() - t0);
    console.log(`  ${view}: ${Math.round(views[view])} ms`);
    await shot(`${Object.keys(views).length + 1}-${view}`);
  };
  await open('networks', () =>
    page.waitForSelector('[data-testid^="networks-"] tr[data-network]', { timeout: 120_000 }),
  );
  await open('instances', () =>
    page.waitForSelector('[data-testid="instances"] tbody tr[data-instance]', { timeout: 120_000 }),
  );
  // The topology scans instances for its network × host breakdown: its last page ends it.
  const scanned = page.waitForResponse(
    async (r) =>
      r.url().includes('/api/v1/instances?') &&
      r.request().method() === 'GET' &&
      ((await r.json().catch(() => ({}))) as { nextCursor?: unknown }).nextCursor === null,
    { timeout: 300_000 },
  );
  await open('topology', () =>
    page.waitForSelector('[data-testid="topology"] canvas', { timeout: 120_000 }),
  );
  const t0 = now() - views.topology;
  await scanned;
  views['topology, breakdown loaded'] = round(now() - t0);
  console.log(
    `  topology, breakdown loaded: ${Math.round(views['topology, breakdown loaded'])} ms`,
  );
  await shot('5-topology-breakdown');
  console.log(`  screenshots in ${relative(ROOT, shots)}/`);
  await page.click('nav a[data-view="fleet"]');

  phase('3. REST create → in the page');
  const seen: number[] = [];
  const rest: number[] = [];
  let expected = (await countsBar(page))[4];
  for (let k = 0; k < CREATES; k++) {
    const t = now();
    await api('POST', '/instances', instanceSpec(shape, P + k));
    rest.push(now() - t);
    expected++;
    await waitInstances(page, expected, 60_000);
    seen.push(now() - t);
    // Let the reloads it caused settle, so creates do not pile up.
    await page.waitForTimeout(300);
  }
  results.createToPage = { ...latency(seen), restMs: latency(rest) };
  console.log(
    `  ${CREATES} creates: p50 ${results.createToPage.p50} ms, p99 ${results.createToPage.p99} ms`,
  );
  phase('done');
}

function printTable(): void {
  const r = results;
  if (!r.firstRender || !r.views || !r.createToPage) return;
  const rows: [string, string][] = [
    ['sign-in → fleet rows', `${Math.round(r.firstRender.fleetRowsMs)} ms`],
    ['sign-in → counts bar complete', `${Math.round(r.firstRender.countsMs)} ms`],
    ...Object.entries(r.views).map(
      ([v, ms]) => [`view ${v}`, `${Math.round(ms)} ms`] as [string, string],
    ),
    [
      'REST create → counts bar',
      `p50 ${r.createToPage.p50} ms, p99 ${r.createToPage.p99} ms (n ${r.createToPage.n}; REST p50 ${r.createToPage.restMs.p50} ms)`,
    ],
  ];
  const w = Math.max(...rows.map(([a]) => a.length));
  console.log(`\nbench:dashboard ${SHAPE} (${shape.H}/${shape.S}/${shape.P})`);
  for (const [a, b] of rows) console.log(`  ${a.padEnd(w)}  ${b}`);
}

run.start(async () => {
  await main();
  printTable();
  console.log(`\nresults written to ${relative(ROOT, run.writeResults())}`);
  await run.finish();
}, MAX_MINUTES);
