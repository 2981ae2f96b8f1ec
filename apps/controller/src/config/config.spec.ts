import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from './config.js';

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
