import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandRunner } from './dataplane/linux/commands.js';
import {
  discoverUnderlayIp,
  JoinRefused,
  joinUrl,
  storeAgentToken,
  storedAgentToken,
} from './join.js';

/** What `ip -j -4 addr show dev eth0` prints on a host with one global address. */
const ETH0 = JSON.stringify([
  {
    ifindex: 2,
    ifname: 'eth0',
    addr_info: [
      { family: 'inet', local: '169.254.0.9', prefixlen: 16, scope: 'link' },
      { family: 'inet', local: '192.0.2.11', prefixlen: 24, scope: 'global' },
    ],
  },
]);

const HAS_IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((f) => existsSync(f));
if (!HAS_IP)
  console.warn('join.spec: no `ip` (iproute2) on this machine: the real discovery case is skipped');

describe('join helpers', () => {
  it('finds the join endpoint beside the agent endpoint', () => {
    expect(joinUrl('ws://10.0.0.1:8080/agent').toString()).toBe('http://10.0.0.1:8080/api/v1/join');
    expect(joinUrl('wss://lattice.example/agent?x=1').toString()).toBe(
      'https://lattice.example/api/v1/join',
    );
  });

  it("takes the uplink's first global IPv4 address, in the agent's namespace when given", async () => {
    const seen: (readonly string[])[] = [];
    const run: CommandRunner = (argv) => {
      seen.push(argv);
      return Promise.resolve({ code: 0, stdout: ETH0, stderr: '' });
    };
    expect(await discoverUnderlayIp('eth0', 'lt-h1', run)).toBe('192.0.2.11');
    expect(seen).toEqual([['ip', '-n', 'lt-h1', '-j', '-4', 'addr', 'show', 'dev', 'eth0']]);
  });

  (HAS_IP ? it : it.skip)(
    'says to give --underlay-ip when the uplink has no global address or does not exist',
    async () => {
      // the real ip: loopback has only a host-scope address
      await expect(discoverUnderlayIp('lo')).rejects.toThrow(
        new JoinRefused('lo has no global IPv4 address: give --underlay-ip'),
      );
      await expect(discoverUnderlayIp('no-such-if0')).rejects.toThrow(
        /cannot find the underlay address of no-such-if0: .*give --underlay-ip/,
      );
    },
  );

  it('stores the agent token readable by its owner only, and reads it back', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lattice-join-spec-'));
    try {
      const state = join(dir, 'state');
      expect(storedAgentToken(state)).toBeUndefined();
      const file = storeAgentToken(state, 'lah_x');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(state).mode & 0o777).toBe(0o700);
      expect(storedAgentToken(state)).toBe('lah_x');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
