/**
 * The agent's command line: `parseAgentArgs` turns argv and the environment into options,
 * or a `UsageError` saying what is wrong. Pure but for reading the token and CA files it
 * names, so that tests (and the compose file's test) check command lines without starting
 * an agent.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RECONNECT_DEFAULTS } from './reconnect.js';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  MAX_COMMAND_OUTPUT_BYTES,
} from './dataplane/linux/commands.js';

export const USAGE = `usage: lattice-agent --controller ws[s]://HOST:PORT/agent --host NAME
                     --token-file PATH | --token TOKEN | (env LATTICE_AGENT_TOKEN)
                     | --join-token-file PATH | --join-token TOKEN | (env LATTICE_JOIN_TOKEN)
                     [--underlay-ip A.B.C.D] [--label KEY=VALUE]…
                     [--ca-file PEM]
                     --dataplane linux|memory [--netns NS] [--uplink eth0]
                     [--state-dir DIR] [--instance-netns-prefix lt]
                     [--heartbeat-ms 10000] [--drift-interval-ms 10000]
                     [--backoff-min-ms 500] [--backoff-max-ms 30000]
                     [--fast-retry-max-ms 1000] [--fast-retry-window-ms 30000]
                     [--controller-timeout-ms N] [--command-timeout-ms ${DEFAULT_COMMAND_TIMEOUT_MS}]
       lattice-agent --help | --version
The agent token is, in this order: --token-file, --token or LATTICE_AGENT_TOKEN; else the
one a join stored in --state-dir (agent-token); else the agent joins: with the join token
(--join-token-file, --join-token or LATTICE_JOIN_TOKEN) it registers its host --host with
the controller (underlay address --underlay-ip, or the first global IPv4 address of
--uplink; labels --label), stores the agent token it is given in --state-dir and uses it
from then on. A refused join (expired, used-up or revoked token, a taken name) exits 2.
After a working session ends (e.g. the controller restarts) the agent retries within
--fast-retry-max-ms for --fast-retry-window-ms, then with exponential backoff from
--backoff-min-ms up to --backoff-max-ms (refusals: always the backoff). A connection
silent for --controller-timeout-ms (default max(30000, 3 heartbeats); 0: never) is dropped.
Prefer --token-file (mode 0600) or LATTICE_AGENT_TOKEN to --token: a command line is
visible to every local user. With wss:// the controller's certificate is verified against
the system's CAs, or against --ca-file when given; an untrusted one is refused.
Every data-plane command (ip, bridge, nft, bird, …) is killed after --command-timeout-ms
or past ${MAX_COMMAND_OUTPUT_BYTES / 1024 / 1024} MiB of output; it then fails the resources it was applying.`;

export class UsageError extends Error {}

export const TOKEN_REQUIRED =
  'a token is required: --token-file PATH, LATTICE_AGENT_TOKEN or --token, or a join token (--join-token-file PATH, LATTICE_JOIN_TOKEN or --join-token)';

export interface AgentCli {
  readonly controller: string;
  readonly host: string;
  /** Given explicitly (flag, file or LATTICE_AGENT_TOKEN). */
  readonly token: string | undefined;
  readonly joinToken: string | undefined;
  readonly underlayIp: string | undefined;
  readonly labels: Record<string, string>;
  readonly ca: string | undefined;
  readonly dataplane: 'linux' | 'memory';
  readonly netns: string | undefined;
  readonly uplink: string;
  readonly stateDir: string;
  readonly instanceNetnsPrefix: string;
  readonly commandTimeoutMs: number;
  readonly heartbeatMs: number;
  readonly driftIntervalMs: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  readonly fastRetryMaxMs: number;
  readonly fastRetryWindowMs: number;
  readonly controllerTimeoutMs: number;
  /** Worth saying, not fatal (e.g. a token on the command line). */
  readonly warnings: string[];
}

const OPTIONS = {
  controller: { type: 'string' },
  host: { type: 'string' },
  token: { type: 'string' },
  'token-file': { type: 'string' },
  'join-token': { type: 'string' },
  'join-token-file': { type: 'string' },
  'underlay-ip': { type: 'string' },
  label: { type: 'string', multiple: true },
  'ca-file': { type: 'string' },
  dataplane: { type: 'string', default: 'linux' },
  netns: { type: 'string' },
  uplink: { type: 'string', default: 'eth0' },
  'state-dir': { type: 'string' },
  'instance-netns-prefix': { type: 'string', default: 'lt' },
  'heartbeat-ms': { type: 'string' },
  'drift-interval-ms': { type: 'string' },
  'backoff-min-ms': { type: 'string' },
  'backoff-max-ms': { type: 'string' },
  'fast-retry-max-ms': { type: 'string' },
  'fast-retry-window-ms': { type: 'string' },
  'controller-timeout-ms': { type: 'string' },
  'command-timeout-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

/** The agent's option names (for tests of command lines written elsewhere). */
export const AGENT_OPTIONS: readonly string[] = Object.keys(OPTIONS);

function modeProblem(file: string): string | undefined {
  const mode = statSync(file).mode;
  return (mode & 0o044) !== 0
    ? `${file} is readable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 it`
    : undefined;
}

/** A secret from `--<name>-file`, `--<name>` (warned about) or the environment variable. */
function secret(
  name: string,
  envName: string,
  file: string | undefined,
  direct: string | undefined,
  env: NodeJS.ProcessEnv,
  warnings: string[],
): string | undefined {
  if (file !== undefined && direct !== undefined)
    throw new UsageError(`give the ${name} with --${name}-file or --${name}, not both`);
  if (direct !== undefined) {
    warnings.push(
      `--${name} puts the ${name.replace('-', ' ')} on the command line, where every local user can read it (ps); use --${name}-file or ${envName}`,
    );
    return direct;
  }
  if (file === undefined) return env[envName] || undefined;
  let text: string;
  try {
    const p = modeProblem(file);
    if (p) warnings.push(`${name} file ${p}`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `cannot read --${name}-file ${file}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const token = text.trim();
  if (!token) throw new UsageError(`--${name}-file ${file} is empty`);
  return token;
}

function readCa(file: string | undefined, controller: string, warnings: string[]) {
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(
      `cannot read --ca-file ${file}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(
      `--ca-file ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
    );
  if (!controller.startsWith('wss://'))
    warnings.push('--ca-file is only used with a wss:// controller URL; this one is ws://');
  return pem;
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

function integer(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new UsageError(`--${name} must be a non-negative integer`);
  return n;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function labels(items: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--label must be KEY=VALUE, got "${item}"`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** The options, or `help`/`version` when asked for (nothing else is then checked). */
export function parseAgentArgs(
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): AgentCli | 'help' | 'version' {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: OPTIONS, strict: true }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help) return 'help';
  if (values.version) return 'version';
  const warnings: string[] = [];
  const controller = values.controller;
  if (!controller || !/^wss?:\/\//.test(controller) || !URL.canParse(controller))
    throw new UsageError('--controller must be a ws:// or wss:// URL');
  const host = values.host;
  if (!host) throw new UsageError('--host is required');
  const token = secret(
    'token',
    'LATTICE_AGENT_TOKEN',
    values['token-file'],
    values.token,
    env,
    warnings,
  );
  const joinToken = secret(
    'join-token',
    'LATTICE_JOIN_TOKEN',
    values['join-token-file'],
    values['join-token'],
    env,
    warnings,
  );
  const stateDir = values['state-dir'] ?? `.lattice-agent/${host}`;
  const underlayIp = values['underlay-ip'];
  if (underlayIp !== undefined && !IPV4.test(underlayIp))
    throw new UsageError(`--underlay-ip must be an IPv4 address, got "${underlayIp}"`);
  const ca = readCa(values['ca-file'], controller, warnings);
  if (controller.startsWith('ws://') && !isLoopback(controller))
    warnings.push(
      'ws:// sends the token and the state in clear text: use wss:// beyond this machine',
    );
  const commandTimeoutMs = integer(
    'command-timeout-ms',
    values['command-timeout-ms'],
    DEFAULT_COMMAND_TIMEOUT_MS,
  );
  if (commandTimeoutMs < 1) throw new UsageError('--command-timeout-ms must be at least 1');
  const dataplane = values.dataplane;
  if (dataplane !== 'linux' && dataplane !== 'memory')
    throw new UsageError('--dataplane must be linux or memory');
  const heartbeatMs = integer('heartbeat-ms', values['heartbeat-ms'], 10_000);
  const backoffMinMs = integer(
    'backoff-min-ms',
    values['backoff-min-ms'],
    RECONNECT_DEFAULTS.backoffMinMs,
  );
  const backoffMaxMs = integer(
    'backoff-max-ms',
    values['backoff-max-ms'],
    RECONNECT_DEFAULTS.backoffMaxMs,
  );
  if (backoffMinMs < 1 || backoffMaxMs < backoffMinMs)
    throw new UsageError('--backoff-min-ms must be at least 1 and at most --backoff-max-ms');
  return {
    controller,
    host,
    token,
    joinToken,
    underlayIp,
    labels: labels(values.label),
    ca,
    dataplane,
    netns: values.netns,
    uplink: values.uplink,
    stateDir,
    instanceNetnsPrefix: values['instance-netns-prefix'],
    commandTimeoutMs,
    heartbeatMs,
    driftIntervalMs: integer(
      'drift-interval-ms',
      values['drift-interval-ms'],
      dataplane === 'linux' ? 10_000 : 0,
    ),
    backoffMinMs,
    backoffMaxMs,
    fastRetryMaxMs: integer(
      'fast-retry-max-ms',
      values['fast-retry-max-ms'],
      RECONNECT_DEFAULTS.fastRetryMaxMs,
    ),
    fastRetryWindowMs: integer(
      'fast-retry-window-ms',
      values['fast-retry-window-ms'],
      RECONNECT_DEFAULTS.fastRetryWindowMs,
    ),
    controllerTimeoutMs: integer(
      'controller-timeout-ms',
      values['controller-timeout-ms'],
      Math.max(30_000, 3 * heartbeatMs),
    ),
    warnings,
  };
}
