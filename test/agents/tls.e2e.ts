/**
 * HTTPS and WSS with a configured certificate: a CA and a server certificate for
 * 127.0.0.1 are made with the `openssl` binary at test time; the API is called over HTTPS
 * with that CA; a real agent process connects over wss:// with --ca-file and --token-file
 * and applies its state; agents without the CA (or with another one) are refused; the
 * admin token comes from a file. Skipped, saying why, where `openssl` is missing (CI
 * installs it: `.ci/run`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ConfigError, loadConfig } from '../../apps/controller/src/config/config.js';
import { spawnAgent, type AgentProcess } from '../support/agents.js';
import { ADMIN_TOKEN, startController, type TestController } from '../support/controller.js';

const HAS_OPENSSL = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0;
if (!HAS_OPENSSL)
  console.warn(
    'tls.e2e: the `openssl` binary is not installed (apt-get install openssl), so no test certificate can be made: skipped',
  );
const d = HAS_OPENSSL ? describe : describe.skip;

let dir: string;
const file = (name: string) => join(dir, name);

function openssl(...args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed:\n${r.stderr}`);
}

/** A self-signed CA `<name>.pem` / `<name>.key` (EC P-256: fast to make). */
function makeCa(name: string): void {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.pem`,
    '-days',
    '2',
    '-subj',
    `/CN=Lattice test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
}

/** `server.pem` / `server.key` for 127.0.0.1 (SAN IP:127.0.0.1), signed by `ca`. */
function makeServerCert(): void {
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'server.key',
    '-out',
    'server.csr',
    '-subj',
    '/CN=127.0.0.1',
  );
  writeFileSync(
    file('server.ext'),
    [
      'subjectAltName=IP:127.0.0.1',
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.pem',
    '-days',
    '2',
    '-extfile',
    'server.ext',
  );
}

const ADMIN_FROM_FILE = 'lat_admin-token-from-a-file-0123456789';
let t: TestController;
let ca: string;
const agents: AgentProcess[] = [];

async function eventually(check: () => Promise<void>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A host's agent token in a file, mode 0600 unless said otherwise. */
function tokenFile(host: { name: string; agentToken: string }, mode = 0o600): string {
  const f = file(`${host.name}.token`);
  writeFileSync(f, `${host.agentToken}\n`);
  chmodSync(f, mode);
  return f;
}

d('TLS: HTTPS, WSS and tokens from files', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lattice-tls-'));
    makeCa('ca');
    makeCa('other-ca');
    makeServerCert();
    ca = readFileSync(file('ca.pem'), 'utf8');
    writeFileSync(file('admin.token'), `${ADMIN_FROM_FILE}\n`, { mode: 0o600 });
    t = await startController({
      env: {
        LATTICE_TLS_CERT_FILE: file('server.pem'),
        LATTICE_TLS_KEY_FILE: file('server.key'),
        LATTICE_ADMIN_TOKEN_FILE: file('admin.token'),
        LATTICE_HELLO_TIMEOUT_MS: '2000',
      },
      ca,
    });
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the API over HTTPS, with the admin token from LATTICE_ADMIN_TOKEN_FILE', async () => {
    expect(t.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await t.get('/hosts').expect(200);
    // the token of the file, not the test default
    await t.get('/hosts', ADMIN_TOKEN).expect(401);
    await t.post('/hosts', { name: 'tls-ro', underlayIp: '192.0.2.200' }, ADMIN_TOKEN).expect(401);
    // without the CA the certificate is not trusted
    const err = await request(t.url)
      .get('/api/v1/health')
      .then(
        () => null,
        (e: Error & { code?: string }) => e,
      );
    expect(err?.code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
    // plain HTTP on the TLS port is not served
    const plain = await request(t.url.replace('https:', 'http:'))
      .get('/api/v1/health')
      .then(
        (r) => r.status,
        () => 'refused',
      );
    expect(plain).not.toBe(200);
  });

  it('an agent with --ca-file and --token-file connects over wss:// and applies its state', async () => {
    const host = await t.newHost();
    const net = await t.newNetwork('overlay', '10.80.0.0/24');
    const inst = await t.newInstance(net.name, host.name);
    const a = spawnAgent({
      url: t.url,
      host: host.name,
      stateDir: join(dir, host.name),
      args: ['--token-file', tokenFile(host), '--ca-file', file('ca.pem')],
    });
    agents.push(a);
    expect(a.proc.spawnargs.some((x) => x.includes(host.agentToken))).toBe(false);
    await a.waitFor(/applied revision \d+ \(\w+, 0 errors\)/, 15_000);
    await eventually(async () => {
      const h = (await t.get(`/hosts/${host.name}`).expect(200)).body;
      expect(h).toMatchObject({ agent: { connected: true, errors: [] }, inSync: true });
    });
    const want = (await t.get(`/hosts/${host.name}/desired-state`).expect(200)).body.resources;
    await eventually(() => {
      const got = a.applied().map((r) => r.key);
      expect(got.sort()).toEqual(want.map((r: { key: string }) => r.key).sort());
      expect(got.some((k) => k.startsWith('port:'))).toBe(true);
      return Promise.resolve();
    });
    // a change made afterwards reaches it over the same wss:// connection
    const since = a.output.length;
    await t.newInstance(net.name, host.name);
    await a.waitFor(/applied revision/, 10_000, since);
    // nothing warned about the token (it came from a 0600 file)
    expect(a.output.filter((l) => /warning/.test(l))).toEqual([]);
    expect((await t.get(`/instances/${inst.name}`).expect(200)).body.state).toBe('active');
  });

  it('an agent without the CA, or with another CA, is refused with a clear log line', async () => {
    const host = await t.newHost();
    // group/other-readable token file: warned about
    const loose = tokenFile(host, 0o644);
    const noCa = spawnAgent({
      url: t.url,
      host: host.name,
      stateDir: join(dir, `${host.name}-noca`),
      args: ['--token-file', loose],
    });
    agents.push(noCa);
    await noCa.waitFor(/token file .* is readable by group or others \(mode 0644\)/);
    const line = await noCa.waitFor(/refusing the controller/);
    expect(line).toMatch(
      /its TLS certificate is not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)[^)]*\); pass the CA that signed it with --ca-file/,
    );
    const otherCa = spawnAgent({
      url: t.url,
      host: host.name,
      stateDir: join(dir, `${host.name}-other`),
      args: ['--token-file', loose, '--ca-file', file('other-ca.pem')],
    });
    agents.push(otherCa);
    expect(await otherCa.waitFor(/refusing the controller/)).toMatch(
      /it does not chain to the CA of --ca-file/,
    );
    // neither ever got through
    await new Promise((r) => setTimeout(r, 500));
    const h = (await t.get(`/hosts/${host.name}`).expect(200)).body;
    expect(h.agent.connected).toBe(false);
    expect(h.agent.lastSeen).toBeNull();
    expect(noCa.output.some((l) => /applied revision/.test(l))).toBe(false);
    expect(otherCa.output.some((l) => /applied revision/.test(l))).toBe(false);
  });

  it('warns about --token on the command line', async () => {
    const host = await t.newHost();
    const a = spawnAgent({
      url: t.url,
      host: host.name,
      token: host.agentToken,
      stateDir: join(dir, host.name),
      args: ['--ca-file', file('ca.pem')],
    });
    agents.push(a);
    await a.waitFor(/warning: --token puts the token on the command line/);
    await a.waitFor(/applied revision/, 15_000);
  });

  it('refuses half or unusable TLS settings at boot with a ConfigError', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (e) {
        if (e instanceof ConfigError) return e.problems.join('\n');
        throw e;
      }
      return '';
    };
    expect(problems({ LATTICE_TLS_CERT_FILE: file('server.pem') })).toMatch(
      /LATTICE_TLS_CERT_FILE and LATTICE_TLS_KEY_FILE go together/,
    );
    // a key that does not belong to the certificate
    expect(
      problems({
        LATTICE_TLS_CERT_FILE: file('server.pem'),
        LATTICE_TLS_KEY_FILE: file('ca.key'),
      }),
    ).toMatch(/not a usable certificate and key/);
    // the key where the certificate should be
    expect(
      problems({
        LATTICE_TLS_CERT_FILE: file('server.key'),
        LATTICE_TLS_KEY_FILE: file('server.key'),
      }),
    ).toMatch(/LATTICE_TLS_CERT_FILE: .* holds no PEM certificate/);
    const ok = loadConfig({
      LATTICE_TLS_CERT_FILE: file('server.pem'),
      LATTICE_TLS_KEY_FILE: file('server.key'),
    });
    expect(ok.tls?.certFile).toBe(file('server.pem'));
  });
});
