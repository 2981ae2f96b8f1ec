import { describe, expect, it } from '@jest/globals';
import {
  blockOf,
  broadcast,
  formatCidr,
  intToIp,
  ipToInt,
  isCanonicalCidr,
  isIpv4,
  isReserved,
  overlaps,
  parseCidr,
} from './ipv4.js';
import { isUnicastMac, normalizeMac, randomMac } from './mac.js';

describe('ipv4', () => {
  it('parses and formats', () => {
    expect(ipToInt('10.1.2.3')).toBe(0x0a010203);
    expect(intToIp(0xffffffff)).toBe('255.255.255.255');
    expect(parseCidr('10.1.2.3/16')).toEqual({ base: 0x0a010000, prefix: 16, addr: 0x0a010203 });
    expect(formatCidr(parseCidr('192.168.7.0/24')!)).toBe('192.168.7.0/24');
    expect(broadcast(parseCidr('10.0.0.0/30')!)).toBe(ipToInt('10.0.0.3'));
  });

  it('rejects malformed input', () => {
    for (const bad of ['10.0.0', '10.0.0.256', '010.0.0.1', '1.2.3.4.5', '', 'a.b.c.d'])
      expect(isIpv4(bad)).toBe(false);
    for (const bad of ['10.0.0.0/33', '10.0.0.0', '10.0.0.0/-1', 'x/24'])
      expect(parseCidr(bad)).toBeNull();
    expect(isCanonicalCidr('10.0.0.1/24')).toBe(false);
    for (const bad of ['010.0.0.1', '1..2.3', '1.2.3.', '256.1.1.1', '1.2.3.4.', '1234.1.1.1'])
      expect(ipToInt(bad)).toBeNaN();
    expect(parseCidr('010.0.0.0/24')).toBeNull();
    expect(isCanonicalCidr('10.0.0.0/24')).toBe(true);
  });

  it('computes blocks, overlaps and reserved ranges', () => {
    expect(formatCidr(blockOf(ipToInt('10.244.3.77'), 26))).toBe('10.244.3.64/26');
    expect(overlaps(parseCidr('10.0.0.0/8')!, parseCidr('10.5.0.0/16')!)).toBe(true);
    expect(overlaps(parseCidr('10.0.0.0/24')!, parseCidr('10.0.1.0/24')!)).toBe(false);
    expect(isReserved(parseCidr('127.0.0.0/8')!)).toBe(true);
    expect(isReserved(parseCidr('0.0.0.0/0')!)).toBe(true);
    expect(isReserved(parseCidr('10.0.0.0/8')!)).toBe(false);
  });
});

describe('mac', () => {
  it('normalises and classifies', () => {
    expect(normalizeMac('AA-BB-CC-00-11-22')).toBe('aa:bb:cc:00:11:22');
    expect(normalizeMac('aa:bb:cc:00:11')).toBeNull();
    expect(isUnicastMac('01:00:5e:00:00:01')).toBe(false);
    expect(isUnicastMac('02:00:00:00:00:01')).toBe(true);
  });

  it('generates locally administered unicast addresses', () => {
    expect(randomMac(() => new Uint8Array([0xff, 1, 2, 3, 4, 5]))).toBe('fe:01:02:03:04:05');
    for (let i = 0; i < 100; i++) {
      const first = parseInt(randomMac().slice(0, 2), 16);
      expect(first & 3).toBe(2);
    }
  });
});
