import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';

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
  /**
   * HTTPS (and WSS for agents, on the same server) with this PEM certificate chain and key
   * (`LATTICE_TLS_CERT_FILE`, `LATTICE_TLS_KEY_FILE`); unset: plain HTTP.
   */
  readonly tls: TlsConfig | undefined;
  /** Not errors, but worth saying at start (e.g. a secret file that others may read). */
  readonly warnings: readonly string[];
  readonly logLevel: 'error' | 'warn' | 'log' | 'debug';
  /** `json`: one JSON object per line (the default); `pretty`: readable lines for a terminal. */
  readonly logFormat: 'json' | 'pretty';
  /** An agent silent this long is disconnected (agents send a heartbeat every third of it). */
  readonly agentTimeoutMs: number;
  /** How long a new agent connection may take to say hello. */
  readonly helloTimeoutMs: number;
  /**
   * Bytes that may wait in an agent's send queue (it is not reading): past it, the agent is
   * disconnected, and resynced when it comes back.
   */
  readonly agentQueueBytes: number;
  /**
   * A join token installed at every start as the one named `bootstrap`
   * (`LATTICE_JOIN_TOKEN` or `_FILE`): for a dev stack or a fleet installer that starts
   * agents with a token known in advance. Unset: join tokens come only from the API.
   */
  readonly bootstrapJoin: BootstrapJoin | undefined;
  /** Revisions the log keeps at least (older ones are compacted, see CompactionService). */
  readonly revisionRetention: number;
  /** A revision younger than this is kept whatever the retention (a lagging replica's margin). */
  readonly revisionMinAgeMs: number;
}

export interface BootstrapJoin {
  readonly token: string;
  /** joins it allows from each start (`LATTICE_JOIN_TOKEN_USES`, default 100) */
  readonly maxUses: number;
  /** valid this long from each start (`LATTICE_JOIN_TOKEN_TTL_S`, default 86400) */
  readonly ttlSeconds: number;
  /** a host may join again under a taken name (`LATTICE_JOIN_TOKEN_REJOIN=true`) */
  readonly allowRejoin: boolean;
}

export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: Buffer;
  readonly key: Buffer;
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

/** A group/other-readable secret file is worth a warning (not an error: it may be intended). */
function checkPrivate(name: string, path: string, warnings: string[]) {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o044) !== 0)
    warnings.push(
      `${name}: ${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 it`,
    );
}

/** `NAME` or `NAME_FILE` (the file's content, trimmed), not both. */
function tokenFrom(
  name: string,
  env: NodeJS.ProcessEnv,
  problems: string[],
  warnings: string[],
): string | undefined {
  const direct = env[name] || undefined;
  const file = env[`${name}_FILE`] || undefined;
  if (direct !== undefined && file !== undefined) {
    problems.push(`${name} and ${name}_FILE are both set: set one`);
    return undefined;
  }
  let token = direct;
  if (file !== undefined) {
    try {
      token = readFileSync(file, 'utf8').trim();
      checkPrivate(`${name}_FILE`, file, warnings);
    } catch (e) {
      problems.push(`${name}_FILE: cannot read ${file} (${(e as Error).message})`);
      return undefined;
    }
  }
  const what = file !== undefined ? `${name}_FILE (${file})` : name;
  if (token !== undefined && token.length < 16) {
    problems.push(`${what} must be at least 16 characters`);
    return undefined;
  }
  return token;
}

/** Both files or neither; both readable PEM, and the key must belong to the certificate. */
function loadTls(env: NodeJS.ProcessEnv, problems: string[], warnings: string[]) {
  const certFile = env.LATTICE_TLS_CERT_FILE || undefined;
  const keyFile = env.LATTICE_TLS_KEY_FILE || undefined;
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    problems.push(
      'LATTICE_TLS_CERT_FILE and LATTICE_TLS_KEY_FILE go together: set both (HTTPS) or neither (HTTP)',
    );
    return undefined;
  }
  const read = (name: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      problems.push(`${name}: cannot read ${path} (${(e as Error).message})`);
      return undefined;
    }
  };
  const cert = read('LATTICE_TLS_CERT_FILE', certFile);
  const key = read('LATTICE_TLS_KEY_FILE', keyFile);
  if (!cert || !key) return undefined;
  if (!cert.includes('-----BEGIN CERTIFICATE-----')) {
    problems.push(`LATTICE_TLS_CERT_FILE: ${certFile} holds no PEM certificate`);
    return undefined;
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) {
    problems.push(`LATTICE_TLS_KEY_FILE: ${keyFile} holds no PEM private key`);
    return undefined;
  }
  try {
    createSecureContext({ cert, key });
  } catch (e) {
    problems.push(
      `LATTICE_TLS_CERT_FILE/LATTICE_TLS_KEY_FILE: not a usable certificate and key (${(e as Error).message})`,
    );
    return undefined;
  }
  checkPrivate('LATTICE_TLS_KEY_FILE', keyFile, warnings);
  return { certFile: resolve(certFile), keyFile: resolve(keyFile), cert, key };
}

/** Reads and validates the environment once, at boot, reporting every problem together. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const warnings: string[] = [];
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
  const agentQueueBytes = parseInteger(
    'LATTICE_AGENT_QUEUE_BYTES',
    env.LATTICE_AGENT_QUEUE_BYTES,
    32 * 1024 * 1024,
    64 * 1024,
    1024 * 1024 * 1024,
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
  const revisionRetention = parseInteger(
    'LATTICE_REVISION_RETENTION',
    env.LATTICE_REVISION_RETENTION,
    10_000,
    1,
    1_000_000_000,
    problems,
  );
  const revisionMinAgeMs = parseInteger(
    'LATTICE_REVISION_MIN_AGE_MS',
    env.LATTICE_REVISION_MIN_AGE_MS,
    600_000,
    0,
    30 * 24 * 3_600_000,
    problems,
  );
  const vlanPool = parseRange('LATTICE_VLAN_POOL', env.LATTICE_VLAN_POOL, VLAN_LIMITS, problems);
  const vniPool = parseRange('LATTICE_VNI_POOL', env.LATTICE_VNI_POOL, VNI_LIMITS, problems);
  const adminToken = tokenFrom('LATTICE_ADMIN_TOKEN', env, problems, warnings);
  const viewerToken = tokenFrom('LATTICE_VIEWER_TOKEN', env, problems, warnings);
  const joinToken = tokenFrom('LATTICE_JOIN_TOKEN', env, problems, warnings);
  const joinUses = parseInteger(
    'LATTICE_JOIN_TOKEN_USES',
    env.LATTICE_JOIN_TOKEN_USES,
    100,
    1,
    1_000_000,
    problems,
  );
  const joinTtl = parseInteger(
    'LATTICE_JOIN_TOKEN_TTL_S',
    env.LATTICE_JOIN_TOKEN_TTL_S,
    86_400,
    60,
    366 * 86_400,
    problems,
  );
  const joinRejoin = env.LATTICE_JOIN_TOKEN_REJOIN || 'false';
  if (!['true', 'false'].includes(joinRejoin))
    problems.push(`LATTICE_JOIN_TOKEN_REJOIN must be true or false, got "${joinRejoin}"`);
  const logLevel = (env.LATTICE_LOG_LEVEL ?? 'log') as Config['logLevel'];
  if (!['error', 'warn', 'log', 'debug'].includes(logLevel)) {
    problems.push(`LATTICE_LOG_LEVEL must be one of error, warn, log, debug`);
  }
  const logFormat = (env.LATTICE_LOG_FORMAT || 'json') as Config['logFormat'];
  if (!['json', 'pretty'].includes(logFormat)) {
    problems.push(`LATTICE_LOG_FORMAT must be json or pretty`);
  }
  if (env.DATABASE_URL && !/^postgres(ql)?:\/\//.test(env.DATABASE_URL)) {
    problems.push('DATABASE_URL must be a postgres:// URL');
  }
  const tls = loadTls(env, problems, warnings);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    port,
    host: env.HOST || '0.0.0.0',
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: resolve(env.LATTICE_DATA_DIR || '.lattice'),
    adminToken,
    viewerToken,
    bootstrapJoin:
      joinToken === undefined
        ? undefined
        : {
            token: joinToken,
            maxUses: joinUses,
            ttlSeconds: joinTtl,
            allowRejoin: joinRejoin === 'true',
          },
    vlanPool,
    vniPool,
    bodyLimit,
    tls,
    warnings,
    logLevel,
    logFormat,
    agentTimeoutMs,
    helloTimeoutMs,
    agentQueueBytes,
    revisionRetention,
    revisionMinAgeMs,
  };
}
