import ipaddr from 'ipaddr.js';

/**
 * IPv4 address arithmetic on unsigned 32-bit integers. Parsing and validation come from
 * ipaddr.js; the arithmetic (blocks, first usable, broadcast) is what IPAM needs on top.
 */

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  readonly base: number;
  readonly prefix: number;
}

/** Strict dotted-quad check: four decimal octets, no leading zeros or shorthand. */
export function isIpv4(s: string): boolean {
  return typeof s === 'string' && ipaddr.IPv4.isValidFourPartDecimal(s) && !/(^|\.)0\d/.test(s);
}

/**
 * Dotted quad to number, without allocating a parser object: this runs on the engine's
 * hot path. Input must be valid (check with `isIpv4` at the edges); otherwise NaN.
 */
export function ipToInt(s: string): number {
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c === -2) {
      if (digits === 0 || octet > 255) return NaN;
      n = n * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= 0 && c <= 9 && digits < 3 && !(digits === 1 && octet === 0)) {
      octet = octet * 10 + c;
      digits++;
    } else return NaN;
  }
  if (dots !== 3 || digits === 0 || octet > 255) return NaN;
  return n * 256 + octet;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d/n`; null when malformed. Host bits may be set (see `isCanonicalCidr`). */
export function parseCidr(s: string): (Cidr & { readonly addr: number }) | null {
  if (typeof s !== 'string') return null;
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m || Number.isNaN(ipToInt(m[1]))) return null;
  const prefix = Number(m[2]);
  if (prefix > 32) return null;
  const addr = ipToInt(m[1]);
  return { base: (addr & maskOf(prefix)) >>> 0, prefix, addr };
}

export function isCanonicalCidr(s: string): boolean {
  const c = parseCidr(s);
  return c !== null && c.addr === c.base;
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function broadcast(c: Cidr): number {
  return c.base + cidrSize(c) - 1;
}

/** First address after the network address: the default gateway. */
export function firstUsable(c: Cidr): number {
  return c.base + 1;
}

export function lastUsable(c: Cidr): number {
  return broadcast(c) - 1;
}

export function contains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip <= broadcast(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base <= broadcast(b) && b.base <= broadcast(a);
}

/** The CIDR's prefix length (null when malformed). */
export function prefixLength(cidr: string): number | null {
  return parseCidr(cidr)?.prefix ?? null;
}

/** Whether dotted-quad `ip` lies in `cidr` (false when either is malformed). */
export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const n = ipToInt(ip);
  return c !== null && !Number.isNaN(n) && contains(c, n);
}

/** The aligned block of `prefix` bits inside which `ip` falls. */
export function blockOf(ip: number, prefix: number): Cidr {
  return { base: (ip & maskOf(prefix)) >>> 0, prefix };
}

/** Ranges no tenant subnet or underlay address may use. */
const RESERVED = ['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '240.0.0.0/4'].map(
  (s) => parseCidr(s)!,
);

export function isReserved(c: Cidr): boolean {
  return RESERVED.some((r) => overlaps(r, c));
}
