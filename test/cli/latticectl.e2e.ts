import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { ADMIN_TOKEN, startController, type TestController } from '../support/controller.js';

/**
 * The real `latticectl` binary (built by `npm test`'s pretest) against a real controller:
 * every command and output format, files with several objects, bad input and exit codes,
 * and where the server and token come from.
 */
const MAIN = resolve('dist/apps/ctl/src/main.js');
let t: TestController;
let home: string;
const agents: AgentProcess[] = [];

beforeAll(async () => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run through \`npm test\``);
  t = await startController();
  home = mkdtempSync(join(tmpdir(), 'lattice-ctl-home-'));
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await t.close();
  rmSync(home, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs latticectl (asynchronously: the controller answers from this same process). */
function ctl(args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const base: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: home,
    LATTICE_URL: t.url,
    LATTICE_TOKEN: ADMIN_TOKEN,
    LATTICE_DATA_DIR: join(home, 'no-data'),
  };
  const merged = Object.fromEntries(
    Object.entries({ ...base, ...env }).filter(([, v]) => v !== undefined),
  ) as Record<string, string>;
  return new Promise((ok) =>
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: merged, timeout: 30_000 },
      (e, stdout, stderr) =>
        ok({ code: e ? ((e as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

async function ok(args: string[], env?: Record<string, string | undefined>): Promise<string> {
  const r = await ctl(args, env);
  if (r.code !== 0)
    throw new Error(`latticectl ${args.join(' ')}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const file = (name: string, text: string, mode = 0o644) => {
  const f = join(home, name);
  writeFileSync(f, text, { mode });
  return f;
};

const STACK = `# in no particular order: latticectl sorts by dependency
kind: instance
name: web1
network: blue
host: h2
labels: { app: web }
---
kind: policy
name: web-in
selector: { matchLabels: { app: web } }
ingress:
  - peers: [{ selector: { matchLabels: { app: web } } }]
---
kind: network
name: blue
model: overlay
cidr: 10.10.0.0/24
---
kind: instance
name: web2
network: blue
host: h2
labels: { app: web }
---
kind: host
name: h2
underlayIp: 192.0.2.2
---
kind: router
name: r1
networks: [blue]
`;

describe('latticectl', () => {
  let h1Token = '';

  it('creates from flags, printing the agent token once', async () => {
    const out = await ok([
      'create',
      'host',
      'h1',
      '--underlay-ip',
      '192.0.2.1',
      '--label',
      'rack=r1',
    ]);
    expect(out).toMatch(/^host\/h1 created \(revision \d+\)\n/);
    const m = /agent token \(shown once\): (lah_\S+)/.exec(out);
    expect(m).not.toBeNull();
    h1Token = m![1];
    const h = (await t.get('/hosts/h1').expect(200)).body;
    expect(h).toMatchObject({ underlayIp: '192.0.2.1', labels: { rack: 'r1' } });
  });

  it('creates every object of a multi-document YAML file in dependency order', async () => {
    const out = await ok(['create', '-f', file('stack.yaml', STACK)]);
    expect(
      out
        .split('\n')
        .filter((l) => / created/.test(l))
        .map((l) => l.split(' ')[0]),
    ).toEqual([
      'host/h2',
      'network/blue',
      'router/r1',
      'policy/web-in',
      'instance/web1',
      'instance/web2',
    ]);
    expect((await t.get('/instances/web2').expect(200)).body).toMatchObject({
      network: 'blue',
      host: 'h2',
      labels: { app: 'web' },
    });
  });

  it('gets as an aligned table, JSON, YAML and names', async () => {
    const tableOut = await ok(['get', 'instances']);
    const lines = tableOut.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+NETWORK\s+HOST\s+IP\s+MAC\s+STATE\s+LABELS$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/).slice(0, 4))).toEqual([
      ['web1', 'blue', 'h2', '10.10.0.2'],
      ['web2', 'blue', 'h2', '10.10.0.3'],
    ]);
    // columns line up: every row's second column starts where the header's does
    const col = lines[0].indexOf('NETWORK');
    for (const l of lines.slice(1)) expect(l.slice(col, col + 4)).toBe('blue');
    const api = (await t.get('/instances').expect(200)).body.items;
    expect(JSON.parse(await ok(['get', 'instances', '-o', 'json']))).toEqual(api);
    expect(parse(await ok(['get', 'instances', '-o', 'yaml']))).toEqual(api);
    expect(await ok(['get', 'i', '-o', 'name'])).toBe('web1\nweb2\n');
    expect(JSON.parse(await ok(['get', 'host', 'h1', '-o', 'json']))).toMatchObject({ name: 'h1' });
    expect(await ok(['get', 'instances', '--host', 'h1', '-o', 'name'])).toBe('');
    expect(await ok(['get', 'networks', '--model', 'overlay', '-o', 'name'])).toBe('blue\n');
    for (const kind of ['hosts', 'networks', 'routers', 'policies', 'join-tokens'])
      expect((await ctl(['get', kind])).code).toBe(0);
  });

  it('describes a host with its desired state and instances', async () => {
    const out = await ok(['describe', 'host', 'h2']);
    const d = parse(out);
    expect(d).toMatchObject({
      kind: 'host',
      name: 'h2',
      desiredState: { resources: expect.any(Number) },
    });
    expect(d.desiredState.resources).toBeGreaterThan(0);
    expect(d.instances.join('\n')).toMatch(/web1 10\.10\.0\.2 \(blue/);
    expect(parse(await ok(['describe', 'network', 'blue'])).instances).toHaveLength(2);
  });

  it('patches, pools, trace and status', async () => {
    expect(await ok(['patch', 'instance', 'web1', '--host', 'h1'])).toMatch(
      /^instance\/web1 changed/,
    );
    expect((await t.get('/instances/web1').expect(200)).body.host).toBe('h1');
    await ok(['patch', 'host', 'h1', '--label', 'rack=r2', '--label', 'zone=a']);
    expect((await t.get('/hosts/h1').expect(200)).body.labels).toEqual({ rack: 'r2', zone: 'a' });
    await ok(['patch', 'router', 'r1', '-d', '{"detach":["blue"]}']);
    expect((await t.get('/routers/r1').expect(200)).body.networks).toEqual([]);

    const pools = await ok(['pools']);
    expect(pools).toMatch(/^POOL\s+RANGE\s+SIZE\s+USED\s+FREE\n/);
    expect(pools).toMatch(/\nvlan\s+\d+-\d+\s+\d+/);
    expect(JSON.parse(await ok(['pools', '-o', 'json']))).toHaveProperty('vni');

    const trace = await ok(['trace', 'web1', 'web2']);
    expect(trace).toMatch(/^STEP\s+HOST\s+DETAIL/);
    expect(trace.trimEnd().split('\n').pop()).toMatch(/^(delivered|dropped)/);
    const tj = JSON.parse(
      await ok(['trace', 'web1', 'web2', '--proto', 'tcp', '--port', '80', '-o', 'json']),
    );
    expect(tj).toMatchObject({ proto: 'tcp', port: 80, verdict: expect.any(String) });

    const st = JSON.parse(await ok(['status', '-o', 'json']));
    expect(st).toMatchObject({ hosts: 2, connected: 0, converged: false });
    expect(await ok(['status'])).toMatch(
      /^revision \d+: 2 hosts, 0 connected, 0 in sync, 2 behind/,
    );
  });

  it('waits for an object to be applied by a real agent, and times out with exit 6 otherwise', async () => {
    const slow = await ctl(['wait', 'instance', 'web2', '--timeout', '0.5']);
    expect(slow.code).toBe(6);
    expect(slow.stderr).toMatch(/timed out waiting for instance\/web2: not applied yet by h2/);
    const a = spawnAgent({
      url: t.url,
      host: 'h1',
      token: h1Token,
      stateDir: join(home, 'agent-h1'),
    });
    agents.push(a);
    expect(await ok(['wait', 'instance', 'web1', '--timeout', '20'])).toBe(
      'instance/web1 applied\n',
    );
    expect(await ok(['wait', '--timeout', '20'])).toMatch(/^revision \d+ applied/);
    const st = JSON.parse(await ok(['status', '-o', 'json']));
    expect(st).toMatchObject({ connected: 1, inSync: 1 });
    expect(
      await ok(['create', 'instance', 'web3', '--network', 'blue', '--host', 'h1', '--wait']),
    ).toMatch(/^instance\/web3 created \(revision \d+, applied in \d+ ms\)/);
  });

  it('makes, lists and revokes join tokens', async () => {
    const out = await ok([
      'create',
      'join-token',
      'jt1',
      '--max-uses',
      '2',
      '--ttl',
      '600',
      '--label',
      'rack=r9',
    ]);
    expect(out).toMatch(/join token \(shown once\): ljt_/);
    const list = await ok(['get', 'join-tokens']);
    expect(list).toMatch(/^NAME\s+STATE\s+USES\s+EXPIRES/);
    expect(list).toMatch(/jt1\s+active\s+0\/2\s+in 10m/);
    expect(await ok(['delete', 'jt', 'jt1'])).toMatch(/^join-token\/jt1 revoked/);
    expect(JSON.parse(await ok(['get', 'jt', 'jt1', '-o', 'json'])).state).toBe('revoked');
  });

  it('says what is wrong in one line, never a stack, with an exit code per kind of failure', async () => {
    const cases: [string[], number, RegExp][] = [
      [
        ['create', 'network', 'bad', '--model', 'overlay', '--cidr', '10.0.0.0/33'],
        1,
        /invalid cidr \(cidr: /,
      ],
      [['create', 'host', 'h1', '--underlay-ip', '192.0.2.9'], 5, /already exists/],
      [['get', 'hosts', 'no-such'], 4, /host "no-such" not found/],
      [
        ['create', 'host', 'x1', '--cidr', '10.0.0.0/24'],
        2,
        /--cidr does not apply to create host/,
      ],
      [['get', 'frobs'], 2, /unknown kind "frobs"/],
      [['get', 'hosts', '--bogus'], 2, /unknown option '--bogus'/],
      [['get', 'hosts', '-o', 'xml'], 2, /Allowed choices are table, json, yaml, name/],
      [['create', '-f', file('bad.yaml', 'kind: host\nname: [unclosed\n')], 2, /not valid YAML/],
      [['create', '-f', file('nokind.yaml', 'name: x\n')], 2, /has no "kind"/],
      [['create', '-f', join(home, 'missing.yaml')], 2, /cannot read/],
      [['patch', 'host', 'h1'], 2, /needs something to change/],
      [['wait', 'revision', 'x'], 2, /one revision number/],
      [['get', 'hosts', '--token', 'wrong-token-0123456789'], 7, /invalid token/],
      [
        ['get', 'hosts', '--server', 'http://127.0.0.1:1'],
        3,
        /cannot reach the controller at http:\/\/127\.0\.0\.1:1/,
      ],
      [['get', 'hosts', '--server', 'ftp://x'], 2, /must be an http:\/\/ or https:\/\/ URL/],
    ];
    for (const [args, code, re] of cases) {
      const r = await ctl(args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect({ args, stderr: r.stderr }).toEqual({ args, stderr: expect.stringMatching(re) });
      expect({ args, stack: /\n\s+at /.test(r.stderr) }).toEqual({ args, stack: false });
    }
  });

  it('takes the server and token from flags, then the environment, then the config file', async () => {
    const none = { LATTICE_URL: undefined, LATTICE_TOKEN: undefined };
    const cfg = file('config.yaml', `server: ${t.url}\ntoken: ${ADMIN_TOKEN}\n`, 0o600);
    // the file alone
    expect((await ctl(['get', 'hosts', '-o', 'name', '--config', cfg], none)).stdout).toBe(
      'h1\nh2\n',
    );
    // the environment beats the file
    const bad = file('bad-token.yaml', `server: ${t.url}\ntoken: wrong-token-0123456789\n`, 0o600);
    expect((await ctl(['get', 'hosts', '--config', bad], { LATTICE_URL: undefined })).code).toBe(0);
    expect((await ctl(['get', 'hosts', '--config', bad], none)).code).toBe(7);
    // a flag beats the environment
    expect(
      (
        await ctl(['get', 'hosts', '--token', ADMIN_TOKEN], {
          LATTICE_TOKEN: 'wrong-token-0123456789',
        })
      ).code,
    ).toBe(0);
    expect((await ctl(['get', 'hosts', '--server', 'http://127.0.0.1:1'])).code).toBe(3);
    // LATTICE_CONFIG, then ~/.config/lattice/config
    expect((await ctl(['get', 'hosts'], { ...none, LATTICE_CONFIG: cfg })).code).toBe(0);
    const set = await ok(['config', 'set', '--server', t.url, '--token', ADMIN_TOKEN], none);
    const written = join(home, '.config/lattice/config');
    expect(set).toBe(`wrote ${written}: server, token\n`);
    expect(statSync(written).mode & 0o777).toBe(0o600);
    expect((await ctl(['get', 'hosts'], none)).code).toBe(0);
    expect(parse(await ok(['config', 'view'], none))).toMatchObject({
      server: t.url,
      serverFrom: written,
      tokenFrom: written,
      token: `${ADMIN_TOKEN.slice(0, 6)}…`,
    });
    // a token file others can read is worth a warning
    const open = file('open.yaml', `server: ${t.url}\ntoken: ${ADMIN_TOKEN}\n`, 0o644);
    const w = await ctl(['get', 'hosts', '--config', open], none);
    expect(w.code).toBe(0);
    expect(w.stderr).toMatch(/readable by others \(mode 0644\): chmod 600 it/);
    const junk = file('junk.yaml', `server: ${t.url}\ncolour: blue\n`, 0o600);
    expect((await ctl(['get', 'hosts', '--config', junk], none)).stderr).toMatch(
      /unknown key "colour"/,
    );
  });

  it('deletes what a file describes, in reverse dependency order', async () => {
    await ok(['delete', 'instance', 'web3', '--wait']);
    const out = await ok(['delete', '-f', join(home, 'stack.yaml')]);
    expect(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ')[0]),
    ).toEqual([
      'instance/web2',
      'instance/web1',
      'policy/web-in',
      'router/r1',
      'network/blue',
      'host/h2',
    ]);
    expect((await t.get('/networks').expect(200)).body.items).toEqual([]);
  });

  it('prints bash and zsh completion that completes commands and kinds', async () => {
    const bash = await ok(['completion', 'bash']);
    expect(bash).toMatch(/complete -F _latticectl latticectl/);
    const script = file('completion.bash', bash);
    const r = await new Promise<string>((done) =>
      execFile(
        'bash',
        [
          '-c',
          `source ${script}; COMP_WORDS=(latticectl get jo); COMP_CWORD=2; _latticectl; echo "\${COMPREPLY[@]}"; COMP_WORDS=(latticectl de); COMP_CWORD=1; _latticectl; echo "\${COMPREPLY[@]}"`,
        ],
        (_e, stdout) => done(stdout),
      ),
    );
    expect(r.split('\n').slice(0, 2)).toEqual(['join-tokens join-token', 'describe delete']);
    const zsh = await ok(['completion', 'zsh']);
    expect(zsh.split('\n')[0]).toBe('#compdef latticectl');
    expect((await ctl(['completion', 'fish'])).code).toBe(2);
  });

  it('answers --help and --version', async () => {
    expect(await ok(['--version'])).toMatch(/^latticectl \d+\.\d+\.\d+/);
    const help = await ok(['--help']);
    for (const c of [
      'get',
      'describe',
      'create',
      'delete',
      'patch',
      'pools',
      'status',
      'trace',
      'wait',
      'completion',
    ])
      expect(help).toMatch(new RegExp(`\\n  ${c} `));
    expect(await ok(['create', '--help'])).toMatch(/--file <file>/);
  });
});
