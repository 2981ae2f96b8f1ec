import { resolve } from 'node:path';

/** A closed integer range, e.g. the VLAN pool `100-4094`. */
export interface Range {
  readonly start: number;
  readonly end: number;
}

export interface Config {
  readonly port: number;
  readonly host: string;
  /** Set: use that PostgreSQL server. Unset: start an embedded one under `dataDir`. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  /** Overrides the generated admin token. */
  readonly adminToken: string | undefined;
  /** Optional read-only token (role `viewer`): GET routes only. */
  readonly viewerToken: string | undefined;
  /** Pool ranges applied at start when given; otherwise the stored (default) ranges stay. */
  readonly vlanPool: Range | undefined;
  readonly vniPool: Range | undefined;
  /** Largest accepted request body, bytes. */
  readonly bodyLimit: number;
  readonly logLevel: 'error' | 'warn' | 'log' | 'debug';
  /** An agent silent this long is disconnected (agents send a heartbeat every third of it). */
  readonly agentTimeoutMs: number;
  /** How long a new agent connection may take to say hello. */
  readonly helloTimeoutMs: number;
}

export const VLAN_LIMITS: Range = { start: 1, end: 4094 };
export const VNI_LIMITS: Range = { start: 1, end: 16_777_215 };

/** Injection token for the validated configuration. */
export const CONFIG = Symbol('lattice.config');

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
  }
}

function parseRange(name: string, raw: string | undefined, limits: Range, problems: string[]) {
  if (raw === undefined || raw === '') return undefined;
  const m = /^(\d+)-(\d+)$/.exec(raw.trim());
  const start = m ? Number(m[1]) : NaN;
  const end = m ? Number(m[2]) : NaN;
  if (!m || start > end || start < limits.start || end > limits.end) {
    problems.push(`${name} must be "START-END" within ${limits.start}-${limits.end}, got "${raw}"`);
    return undefined;
  }
  return { start, end };
}

function parseInteger(
  name: string,
  raw: string | undefined,
  def: number,
  min: number,
  max: number,
  problems: string[],
) {
  if (raw === undefined || raw === '') return def;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} must be an integer in ${min}-${max}, got "${raw}"`);
    return def;
  }
  return n;
}

/** Reads and validates the environment once, at boot, reporting every problem together. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const port = parseInteger('PORT', env.PORT, 8080, 0, 65535, problems);
  const bodyLimit = parseInteger(
    'LATTICE_BODY_LIMIT',
    env.LATTICE_BODY_LIMIT,
    2 * 1024 * 1024,
    1024,
    64 * 1024 * 1024,
    problems,
  );
  const agentTimeoutMs = parseInteger(
    'LATTICE_AGENT_TIMEOUT_MS',
    env.LATTICE_AGENT_TIMEOUT_MS,
    30_000,
    100,
    3_600_000,
    problems,
  );
  const helloTimeoutMs = parseInteger(
    'LATTICE_HELLO_TIMEOUT_MS',
    env.LATTICE_HELLO_TIMEOUT_MS,
    5_000,
    100,
    600_000,
    problems,
  );
  const vlanPool = parseRange('LATTICE_VLAN_POOL', env.LATTICE_VLAN_POOL, VLAN_LIMITS, problems);
  const vniPool = parseRange('LATTICE_VNI_POOL', env.LATTICE_VNI_POOL, VNI_LIMITS, problems);
  for (const name of ['LATTICE_ADMIN_TOKEN', 'LATTICE_VIEWER_TOKEN'] as const) {
    const v = env[name];
    if (v !== undefined && v !== '' && v.length < 16)
      problems.push(`${name} must be at least 16 characters`);
  }
  const logLevel = (env.LATTICE_LOG_LEVEL ?? 'log') as Config['logLevel'];
  if (!['error', 'warn', 'log', 'debug'].includes(logLevel)) {
    problems.push(`LATTICE_LOG_LEVEL must be one of error, warn, log, debug`);
  }
  if (env.DATABASE_URL && !/^postgres(ql)?:\/\//.test(env.DATABASE_URL)) {
    problems.push('DATABASE_URL must be a postgres:// URL');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host: env.HOST || '0.0.0.0',
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: resolve(env.LATTICE_DATA_DIR || '.lattice'),
    adminToken: env.LATTICE_ADMIN_TOKEN || undefined,
    viewerToken: env.LATTICE_VIEWER_TOKEN || undefined,
    vlanPool,
    vniPool,
    bodyLimit,
    logLevel,
    agentTimeoutMs,
    helloTimeoutMs,
  };
}
