#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { Agent } from './agent.js';
import { RECONNECT_DEFAULTS } from './reconnect.js';
import { createDataplane } from './dataplane/factory.js';

const USAGE = `usage: lattice-agent --controller ws://HOST:PORT/agent --host NAME --token TOKEN
                     --dataplane linux|memory [--netns NS] [--uplink eth0]
                     [--state-dir DIR] [--instance-netns-prefix lt]
                     [--heartbeat-ms 10000] [--drift-interval-ms 10000]
                     [--backoff-min-ms 500] [--backoff-max-ms 30000]
                     [--fast-retry-max-ms 1000] [--fast-retry-window-ms 30000]
                     [--controller-timeout-ms N]
After a working session ends (e.g. the controller restarts) the agent retries within
--fast-retry-max-ms for --fast-retry-window-ms, then with exponential backoff from
--backoff-min-ms up to --backoff-max-ms (refusals: always the backoff). A connection
silent for --controller-timeout-ms (default max(30000, 3 heartbeats); 0: never) is dropped.
The token may also come from LATTICE_AGENT_TOKEN.`;

function fail(message: string): never {
  console.error(`lattice-agent: ${message}\n${USAGE}`);
  process.exit(2);
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
  const token = values.token ?? process.env.LATTICE_AGENT_TOKEN;
  if (!values.controller || !/^wss?:\/\//.test(values.controller))
    fail('--controller must be a ws:// or wss:// URL');
  if (!values.host) fail('--host is required');
  if (!token) fail('--token (or LATTICE_AGENT_TOKEN) is required');
  if (values.dataplane !== 'linux' && values.dataplane !== 'memory')
    fail('--dataplane must be linux or memory');
  const stateDir = values['state-dir'] ?? `.lattice-agent/${values.host}`;
  const dataplane = createDataplane(values.dataplane, {
    netns: values.netns,
    uplink: values.uplink,
    stateDir,
    instanceNetnsPrefix: values['instance-netns-prefix'],
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
