import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import request from 'supertest';
import WebSocket from 'ws';
import { freePort } from '../../apps/controller/src/database/embedded-postgres.js';
import { MAX_FRAME_BYTES } from '../../libs/protocol/src/index.js';
import { ADMIN_TOKEN, createTestDatabase } from '../support/controller.js';
import { connectRawAgent } from '../support/raw-agent.js';

/**
 * The controller's logs as an operator reads them: the built controller (`npm start`'s
 * `node dist/apps/controller/src/main.js`) in a child process, its stdout parsed line by
 * line. Every line is a JSON object; every request has one line with its id, method, path,
 * status and duration; expected outcomes (404, a `?wait=applied` 504, an agent's oversized
 * frame) are below ERROR and carry no stack; a real fault (500) is an ERROR with its stack.
 */
const MAIN = resolve('dist/apps/controller/src/main.js');
type Line = Record<string, any>;

interface Child {
  proc: ChildProcess;
  url: string;
  lines: string[];
  stderr: string[];
  /** Resolves with the first parsed line matching `pred` (waiting for it if need be). */
  find(pred: (l: Line) => boolean, what: string, timeoutMs?: number): Promise<Line>;
  stop(): Promise<number | null>;
}

function parsed(lines: string[]): Line[] {
  return lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Line];
    } catch {
      return [];
    }
  });
}

async function startChild(databaseUrl: string, env: Record<string, string> = {}): Promise<Child> {
  if (!existsSync(MAIN))
    throw new Error(`${MAIN} is missing: run the tests through \`npm test\`, which builds first`);
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'lattice-logging-'));
  const childEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    LATTICE_ADMIN_TOKEN: ADMIN_TOKEN,
    LATTICE_DATA_DIR: dataDir,
    LATTICE_LOG_LEVEL: 'log',
    LATTICE_AGENT_TIMEOUT_MS: '5000',
    ...env,
  };
  if (!env.LATTICE_LOG_FORMAT) delete childEnv.LATTICE_LOG_FORMAT; // the default: json
  const proc = spawn(process.execPath, [MAIN], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  proc.stdout.on('data', (b: Buffer) => {
    const parts = (partial + b.toString('utf8')).split('\n');
    partial = parts.pop()!;
    lines.push(...parts.filter((l) => l !== ''));
    for (const w of waiters) w();
  });
  proc.stderr.on('data', (b: Buffer) => stderr.push(b.toString('utf8')));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const child: Child = {
    proc,
    url: `http://127.0.0.1:${port}`,
    lines,
    stderr,
    find(pred, what, timeoutMs = 10_000) {
      return new Promise((ok, fail) => {
        const check = () => {
          const hit = parsed(lines).find(pred);
          if (!hit) return;
          waiters.delete(check);
          clearTimeout(timer);
          ok(hit);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          fail(new Error(`no log line for ${what}; stdout:\n${lines.slice(-30).join('\n')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      const code = await exited;
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
  // Raw lines: the start is awaited the same way whatever the format.
  const until = Date.now() + 30_000;
  while (!lines.some((l) => l.includes('Lattice controller listening on'))) {
    if (Date.now() > until || proc.exitCode !== null) {
      await child.stop();
      throw new Error(
        `the controller did not start; stdout:\n${lines.join('\n')}\nstderr:\n${stderr.join('')}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

let databaseUrl: string;
let c: Child;
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
const api = (path: string) => `/api/v1${path}`;
const byId = (id: string) => (l: Line) => l.context === 'http' && l.reqId === id;

beforeAll(async () => {
  databaseUrl = await createTestDatabase();
  c = await startChild(databaseUrl);
});
afterAll(async () => {
  await c?.stop();
});

describe('JSON logs of the running controller', () => {
  it('writes one line per request with id, method, path, status and duration', async () => {
    const res = await request(c.url)
      .get(api('/hosts?limit=5'))
      .set(auth)
      .set('x-request-id', 'client-id-1')
      .expect(200);
    expect(res.headers['x-request-id']).toBe('client-id-1');
    const line = await c.find(byId('client-id-1'), 'GET /hosts');
    expect(line).toMatchObject({
      level: 'info',
      context: 'http',
      reqId: 'client-id-1',
      method: 'GET',
      path: '/api/v1/hosts?limit=5',
      status: 200,
      msg: 'GET /api/v1/hosts?limit=5 200',
    });
    expect(typeof line.durationMs).toBe('number');
    expect(typeof line.time).toBe('string');
    // The token is in no line.
    expect(c.lines.join('\n')).not.toContain(ADMIN_TOKEN);

    // Without a plausible id of the client's, the controller makes one and echoes it.
    for (const given of [undefined, 'has space', 'x'.repeat(129)]) {
      const r = request(c.url).get(api('/health'));
      if (given !== undefined) r.set('x-request-id', given);
      const id = (await r.expect(200)).headers['x-request-id'];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      await c.find(byId(id), `GET /health (${given})`);
    }
  });

  it('logs a 404 and GET / at info, without a stack', async () => {
    await request(c.url).get(api('/hosts/nope')).set(auth).set('x-request-id', 'nf-1').expect(404);
    await request(c.url).get('/no/such/path').set('x-request-id', 'nf-2').expect(404);
    const root = await request(c.url).get('/').set('x-request-id', 'root-1').expect(200);
    expect(root.body).toMatchObject({ name: 'Lattice', version: expect.any(String) });
    for (const id of ['nf-1', 'nf-2', 'root-1']) {
      const line = await c.find(byId(id), id);
      expect(line.level).toBe('info');
      expect(line.err).toBeUndefined();
    }
  });

  it('logs a ?wait=applied 504 at warn with its reason, without a stack', async () => {
    const host = (
      await request(c.url)
        .post(api('/hosts'))
        .set(auth)
        .send({ name: 'h1', underlayIp: '192.0.2.1' })
        .expect(201)
    ).body;
    await request(c.url)
      .post(api('/networks'))
      .set(auth)
      .send({ name: 'blue', model: 'bridge', cidr: '10.9.0.0/24' })
      .expect(201);
    // An agent that says hello and never acknowledges what it is sent.
    const agent = await connectRawAgent(c.url);
    agent.hello('h1', host.agentToken);
    await agent.next();
    const res = await request(c.url)
      .post(api('/instances?wait=applied&timeoutMs=300'))
      .set(auth)
      .set('x-request-id', 'wait-1')
      .send({ name: 'web1', network: 'blue', host: 'h1' })
      .expect(504);
    agent.ws.close();
    const line = await c.find(byId('wait-1'), 'the 504');
    expect(line).toMatchObject({ level: 'warn', status: 504 });
    expect(line.reason).toBe(res.body.message);
    expect(line.err).toBeUndefined();
  });

  it("logs an agent's oversized frame at warn, without a stack", async () => {
    const ws = new WebSocket(`${c.url.replace('http', 'ws')}/agent`);
    await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send('x'.repeat(MAX_FRAME_BYTES + 1));
    expect(await closed).toBe(1009);
    const line = await c.find(
      (l) => l.context === 'agents' && /Max payload size exceeded/.test(l.msg ?? ''),
      'the oversized frame',
    );
    expect(line.level).toBe('warn');
    expect(line.err).toBeUndefined();
  });

  it('logs a real fault (500) at error, with its stack, on the request line', async () => {
    // A fault of the server's own making: a table it reads is gone under it.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      await db.query('ALTER TABLE pools RENAME TO pools_hidden');
      await request(c.url).get(api('/pools')).set(auth).set('x-request-id', 'fault-1').expect(500);
    } finally {
      await db.query('ALTER TABLE pools_hidden RENAME TO pools');
      await db.end();
    }
    const line = await c.find(byId('fault-1'), 'the 500');
    expect(line).toMatchObject({ level: 'error', status: 500, path: '/api/v1/pools' });
    expect(line.err.message).toContain('pools');
    expect(line.err.stack).toMatch(/\n\s+at /);
    expect(line.err.parameters).toBeUndefined(); // a query's values are never logged
  });

  it('writes nothing but JSON lines, and only the real fault at error or with a stack', () => {
    const all = c.lines.map((l) => {
      try {
        return JSON.parse(l) as Line;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
    for (const l of all) {
      expect(typeof l.level).toBe('string');
      expect(typeof l.time).toBe('string');
      expect(typeof l.msg).toBe('string');
    }
    const faults = all.filter(
      (l) => l.level === 'error' || l.level === 'fatal' || /\n\s+at /.test(JSON.stringify(l)),
    );
    expect(faults.map((l) => l.reqId)).toEqual(['fault-1']);
    // The framework's start-up chatter (modules, routes mapped) is at debug.
    expect(all.some((l) => l.context === 'RouterExplorer')).toBe(false);
    expect(c.stderr.join('')).not.toMatch(/error/i);
  });
});

describe('GET /', () => {
  const LINKS = ['/api/v1', '/api/docs', '/api/docs-json', '/api/v1/health', '/api/v1/metrics'];

  it('answers JSON without a token: name, version and the links', async () => {
    for (const accept of [undefined, 'application/json', '*/*']) {
      const r = request(c.url).get('/');
      if (accept) r.set('accept', accept);
      const res = await r.expect(200).expect('content-type', /^application\/json/);
      expect(res.headers.vary).toMatch(/accept/i);
      expect(res.body).toMatchObject({ name: 'Lattice', version: expect.stringMatching(/^\d/) });
      expect(Object.values(res.body.links).map((l: any) => l.href)).toEqual(LINKS);
    }
  });

  it('answers an HTML page to a browser', async () => {
    const res = await request(c.url)
      .get('/')
      .set('accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')
      .expect(200)
      .expect('content-type', /^text\/html/);
    expect(res.text).toContain('<h1>Lattice</h1>');
    expect(res.text).toContain('<code>/api/v1</code>');
    for (const href of LINKS.slice(1)) expect(res.text).toContain(`href="${href}"`);
  });
});

describe('LATTICE_LOG_FORMAT=pretty', () => {
  it('writes readable lines instead', async () => {
    const p = await startChild(databaseUrl, { LATTICE_LOG_FORMAT: 'pretty', NO_COLOR: '1' });
    try {
      await request(p.url).get(api('/health')).set('x-request-id', 'pretty-1').expect(200);
      const until = Date.now() + 5000;
      while (!p.lines.some((l) => l.includes('pretty-1')) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 20));
      const line = p.lines.find((l) => l.includes('pretty-1'));
      expect(line).toMatch(
        /^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[http\] GET \/api\/v1\/health 200 reqId=pretty-1 durationMs=/,
      );
      expect(p.lines.some((l) => l.startsWith('{'))).toBe(false);
    } finally {
      expect(await p.stop()).toBe(0);
    }
  });
});
