import { afterAll, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './config.js';

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
};

describe('loadConfig', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8080,
      databaseUrl: undefined,
      adminToken: undefined,
      vlanPool: undefined,
      bodyLimit: 2 * 1024 * 1024,
    });
    expect(c.dataDir).toMatch(/\.lattice$/);
  });

  it('parses pools and reports every problem at once', () => {
    expect(loadConfig({ LATTICE_VLAN_POOL: '10-20', LATTICE_VNI_POOL: '1-99' })).toMatchObject({
      vlanPool: { start: 10, end: 20 },
      vniPool: { start: 1, end: 99 },
    });
    let err: unknown;
    try {
      loadConfig({
        PORT: 'x',
        LATTICE_VLAN_POOL: '5000-6000',
        LATTICE_VNI_POOL: '9-1',
        LATTICE_ADMIN_TOKEN: 'short',
        DATABASE_URL: 'mysql://x',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.split(' ')[0])).toEqual([
      'PORT',
      'LATTICE_VLAN_POOL',
      'LATTICE_VNI_POOL',
      'LATTICE_ADMIN_TOKEN',
      'DATABASE_URL',
    ]);
  });
});

describe('loadConfig: tokens from files, TLS files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lattice-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string, mode = 0o600) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    chmodSync(f, mode);
    return f;
  };

  it('reads LATTICE_ADMIN_TOKEN_FILE and LATTICE_VIEWER_TOKEN_FILE (trimmed)', () => {
    const admin = write('admin', 'admin-token-from-file-0123\n');
    const viewer = write('viewer', '  viewer-token-from-file-0123  \n');
    const c = loadConfig({ LATTICE_ADMIN_TOKEN_FILE: admin, LATTICE_VIEWER_TOKEN_FILE: viewer });
    expect(c.adminToken).toBe('admin-token-from-file-0123');
    expect(c.viewerToken).toBe('viewer-token-from-file-0123');
    expect(c.warnings).toEqual([]);
    expect(loadConfig({ LATTICE_ADMIN_TOKEN: 'admin-token-from-env-0123' }).adminToken).toBe(
      'admin-token-from-env-0123',
    );
  });

  it('warns about a token file that group or others may read', () => {
    const loose = write('loose', 'admin-token-from-file-0123', 0o644);
    expect(loadConfig({ LATTICE_ADMIN_TOKEN_FILE: loose }).warnings).toEqual([
      `LATTICE_ADMIN_TOKEN_FILE: ${loose} is readable by group or others (mode 0644): chmod 600 it`,
    ]);
  });

  it('refuses both forms at once, unreadable, short or empty token files', () => {
    const ok = write('ok', 'admin-token-from-file-0123');
    const short = write('short', 'tiny\n');
    const empty = write('empty', '\n');
    expect(
      problemsOf({
        LATTICE_ADMIN_TOKEN: 'admin-token-from-env-0123',
        LATTICE_ADMIN_TOKEN_FILE: ok,
      }),
    ).toEqual(['LATTICE_ADMIN_TOKEN and LATTICE_ADMIN_TOKEN_FILE are both set: set one']);
    expect(problemsOf({ LATTICE_VIEWER_TOKEN_FILE: join(dir, 'missing') })[0]).toMatch(
      /^LATTICE_VIEWER_TOKEN_FILE: cannot read .*missing \(ENOENT/,
    );
    expect(problemsOf({ LATTICE_ADMIN_TOKEN_FILE: short })).toEqual([
      `LATTICE_ADMIN_TOKEN_FILE (${short}) must be at least 16 characters`,
    ]);
    expect(problemsOf({ LATTICE_ADMIN_TOKEN_FILE: empty })).toEqual([
      `LATTICE_ADMIN_TOKEN_FILE (${empty}) must be at least 16 characters`,
    ]);
  });

  it('wants both TLS files or neither, readable and PEM', () => {
    expect(loadConfig({}).tls).toBeUndefined();
    const pem = write('cert.pem', 'not a certificate');
    expect(problemsOf({ LATTICE_TLS_KEY_FILE: pem })).toEqual([
      'LATTICE_TLS_CERT_FILE and LATTICE_TLS_KEY_FILE go together: set both (HTTPS) or neither (HTTP)',
    ]);
    expect(
      problemsOf({ LATTICE_TLS_CERT_FILE: join(dir, 'nope.pem'), LATTICE_TLS_KEY_FILE: pem }),
    ).toEqual([expect.stringMatching(/^LATTICE_TLS_CERT_FILE: cannot read .*nope\.pem/)]);
    expect(problemsOf({ LATTICE_TLS_CERT_FILE: pem, LATTICE_TLS_KEY_FILE: pem })).toEqual([
      `LATTICE_TLS_CERT_FILE: ${pem} holds no PEM certificate`,
    ]);
    // Real certificates and a mismatched key: test/agents/tls.e2e.ts (made with openssl).
  });
});
