#!/usr/bin/env node
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Agent } from './agent.js';
import { RECONNECT_DEFAULTS } from './reconnect.js';
import { createDataplane } from './dataplane/factory.js';
import {
  DEFAULT_COMMAND_TIMEOUT_MS,
  MAX_COMMAND_OUTPUT_BYTES,
} from './dataplane/linux/commands.js';

const USAGE = `usage: lattice-agent --controller ws[s]://HOST:PORT/agent --host NAME
                     --token-file PATH | --token TOKEN | (env LATTICE_AGENT_TOKEN)
                     [--ca-file PEM]
                     --dataplane linux|memory [--netns NS] [--uplink eth0]
                     [--state-dir DIR] [--instance-netns-prefix lt]
                     [--heartbeat-ms 10000] [--drift-interval-ms 10000]
                     [--backoff-min-ms 500] [--backoff-max-ms 30000]
                     [--fast-retry-max-ms 1000] [--fast-retry-window-ms 30000]
                     [--controller-timeout-ms N] [--command-timeout-ms ${DEFAULT_COMMAND_TIMEOUT_MS}]
After a working session ends (e.g. the controller restarts) the agent retries within
--fast-retry-max-ms for --fast-retry-window-ms, then with exponential backoff from
--backoff-min-ms up to --backoff-max-ms (refusals: always the backoff). A connection
silent for --controller-timeout-ms (default max(30000, 3 heartbeats); 0: never) is dropped.
Prefer --token-file (mode 0600) or LATTICE_AGENT_TOKEN to --token: a command line is
visible to every local user. With wss:// the controller's certificate is verified against
the system's CAs, or against --ca-file when given; an untrusted one is refused.
Every data-plane command (ip, bridge, nft, bird, …) is killed after --command-timeout-ms
or past ${MAX_COMMAND_OUTPUT_BYTES / 1024 / 1024} MiB of output; it then fails the resources it was applying.`;

function fail(message: string): never {
  console.error(`lattice-agent: ${message}\n${USAGE}`);
  process.exit(2);
}

function warn(message: string): void {
  console.error(`lattice-agent: warning: ${message}`);
}

/** The token: --token-file, else --token (warned about), else LATTICE_AGENT_TOKEN. */
function readToken(file: string | undefined, fromArgs: string | undefined): string | undefined {
  if (file !== undefined && fromArgs !== undefined)
    fail('give the token with --token-file or --token, not both');
  if (fromArgs !== undefined) {
    warn(
      '--token puts the token on the command line, where every local user can read it (ps); use --token-file or LATTICE_AGENT_TOKEN',
    );
    return fromArgs;
  }
  if (file === undefined) return process.env.LATTICE_AGENT_TOKEN || undefined;
  let text: string;
  try {
    const mode = statSync(file).mode;
    if ((mode & 0o044) !== 0)
      warn(
        `token file ${file} is readable by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 it`,
      );
    text = readFileSync(file, 'utf8');
  } catch (e) {
    fail(`cannot read --token-file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const token = text.trim();
  if (!token) fail(`--token-file ${file} is empty`);
  return token;
}

/** The CA certificate(s) of --ca-file, checked to be PEM. */
function readCa(file: string | undefined, controller: string): string | undefined {
  if (file === undefined) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (e) {
    fail(`cannot read --ca-file ${file}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    fail(`--ca-file ${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  if (!controller.startsWith('wss://'))
    warn('--ca-file is only used with a wss:// controller URL; this one is ws://');
  return pem;
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '[::1]' || /^127\./.test(host);
}

function integer(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`--${name} must be a non-negative integer`);
  return n;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        controller: { type: 'string' },
        host: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
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
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (
    !values.controller ||
    !/^wss?:\/\//.test(values.controller) ||
    !URL.canParse(values.controller)
  )
    fail('--controller must be a ws:// or wss:// URL');
  if (!values.host) fail('--host is required');
  const token = readToken(values['token-file'], values.token);
  if (!token) fail('a token is required: --token-file PATH, LATTICE_AGENT_TOKEN or --token');
  const ca = readCa(values['ca-file'], values.controller);
  if (values.controller.startsWith('ws://') && !isLoopback(values.controller))
    warn('ws:// sends the token and the state in clear text: use wss:// beyond this machine');
  const commandTimeoutMs = integer(
    'command-timeout-ms',
    values['command-timeout-ms'],
    DEFAULT_COMMAND_TIMEOUT_MS,
  );
  if (commandTimeoutMs < 1) fail('--command-timeout-ms must be at least 1');
  if (values.dataplane !== 'linux' && values.dataplane !== 'memory')
    fail('--dataplane must be linux or memory');
  const stateDir = values['state-dir'] ?? `.lattice-agent/${values.host}`;
  const dataplane = createDataplane(values.dataplane, {
    netns: values.netns,
    uplink: values.uplink,
    stateDir,
    instanceNetnsPrefix: values['instance-netns-prefix'],
    commandTimeoutMs,
  });
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
    fail('--backoff-min-ms must be at least 1 and at most --backoff-max-ms');
  const agent = new Agent({
    controller: values.controller,
    host: values.host,
    token,
    ca,
    dataplane,
    stateDir,
    heartbeatMs,
    driftIntervalMs: integer(
      'drift-interval-ms',
      values['drift-interval-ms'],
      values.dataplane === 'linux' ? 10_000 : 0,
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
    log: (line) => console.log(`${new Date().toISOString()} ${line}`),
  });
  agent.on((e) => {
    if (e.type === 'applied')
      console.log(
        `${new Date().toISOString()} applied revision ${e.revision} (${e.via}, ${e.errors.length} errors)`,
      );
  });
  const stop = (signal: string) => {
    console.log(`${signal}: stopping (the data plane stays as it is)`);
    agent.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await agent.start();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
