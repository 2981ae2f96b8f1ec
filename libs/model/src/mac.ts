import { randomBytes } from 'node:crypto';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Lower-cases and accepts `-` as separator; null when not a MAC address. */
export function normalizeMac(s: string): string | null {
  if (typeof s !== 'string') return null;
  const m = s.trim().toLowerCase().replace(/-/g, ':');
  return MAC.test(m) ? m : null;
}

/** Multicast (and broadcast) MACs have the least significant bit of the first octet set. */
export function isUnicastMac(mac: string): boolean {
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00';
}

/** A random locally administered unicast MAC (`x2:`, `x6:`, `xa:` or `xe:` first octet). */
export function randomMac(random: (n: number) => Uint8Array = randomBytes): string {
  const b = random(6);
  b[0] = (b[0] & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
