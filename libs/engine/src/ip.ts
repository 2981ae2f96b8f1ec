/**
 * Minimal IPv4 arithmetic for the engine. Kept local and allocation-free on purpose: the
 * engine runs on hot paths (full recompute of a fleet) and must not depend on parsing
 * libraries with their own object models.
 */

/** Parses a dotted-quad IPv4 address to an unsigned 32-bit number, or NaN when invalid. */
export function parseIpv4(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) return NaN;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return NaN;
    const v = Number(p);
    if (v > 255) return NaN;
    n = n * 256 + v;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return `${Math.floor(n / 16777216) % 256}.${Math.floor(n / 65536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`;
}

export interface Ipv4Cidr {
  /** Network address as an unsigned 32-bit number. */
  readonly base: number;
  readonly prefixLen: number;
}

/** Parses `a.b.c.d/len`; the host bits are masked off. Returns null when invalid. */
export function parseCidr(cidr: string): Ipv4Cidr | null {
  const slash = cidr.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIpv4(cidr.slice(0, slash));
  const lenText = cidr.slice(slash + 1);
  if (Number.isNaN(ip) || !/^\d{1,2}$/.test(lenText)) return null;
  const prefixLen = Number(lenText);
  if (prefixLen > 32) return null;
  const size = 2 ** (32 - prefixLen);
  return { base: ip - (ip % size), prefixLen };
}

export function cidrContains(cidr: string, ip: string): boolean {
  const c = parseCidr(cidr);
  const n = parseIpv4(ip);
  if (!c || Number.isNaN(n)) return false;
  return n - c.base >= 0 && n - c.base < 2 ** (32 - c.prefixLen);
}

/** Prefix length of a CIDR, or null when invalid. */
export function prefixLength(cidr: string): number | null {
  return parseCidr(cidr)?.prefixLen ?? null;
}

/**
 * First usable address of a block: the gateway of a per-host block. For /31 and /32 the
 * network address itself (RFC 3021 style), since there is no separate network address.
 */
export function firstUsable(cidr: string): string | null {
  const c = parseCidr(cidr);
  if (!c) return null;
  return formatIpv4(c.prefixLen >= 31 ? c.base : c.base + 1);
}
