#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { Agent } from './agent.js';
import { createDataplane } from './dataplane/factory.js';

const USAGE = `usage: lattice-agent --controller ws://HOST:PORT/agent --host NAME --token TOKEN
                     --dataplane linux|memory [--netns NS] [--uplink eth0]
                     [--state-dir DIR] [--instance-netns-prefix lt]
                     [--heartbeat-ms 10000] [--drift-interval-ms 10000]
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
  const agent = new Agent({
    controller: values.controller,
    host: values.host,
    token,
    dataplane,
    stateDir,
    heartbeatMs: integer('heartbeat-ms', values['heartbeat-ms'], 10_000),
    driftIntervalMs: integer(
      'drift-interval-ms',
      values['drift-interval-ms'],
      values.dataplane === 'linux' ? 10_000 : 0,
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
