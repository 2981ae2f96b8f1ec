#!/usr/bin/env node
import { Agent } from './agent.js';
import { parseAgentArgs, TOKEN_REQUIRED, USAGE, UsageError, type AgentCli } from './cli.js';
import { createDataplane } from './dataplane/factory.js';
import {
  discoverUnderlayIp,
  joinController,
  JoinRefused,
  storeAgentToken,
  storedAgentToken,
} from './join.js';
import { programVersion } from '../../../libs/version/src/index.js';

function fail(message: string): never {
  console.error(`lattice-agent: ${message}\n${USAGE}`);
  process.exit(2);
}

const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);

/**
 * The agent token: given (flag, file, environment), else the one a join stored in the
 * state directory, else a join's. A refused join exits 2 (retrying cannot help).
 */
async function agentToken(cli: AgentCli): Promise<string> {
  if (cli.token) return cli.token;
  const stored = storedAgentToken(cli.stateDir);
  if (stored) {
    log(`using the agent token stored in ${cli.stateDir} by an earlier join`);
    return stored;
  }
  if (!cli.joinToken) fail(TOKEN_REQUIRED);
  try {
    const underlayIp = cli.underlayIp ?? (await discoverUnderlayIp(cli.uplink, cli.netns));
    log(`joining as host ${cli.host} (underlay ${underlayIp}, uplink ${cli.uplink})`);
    const joined = await joinController({
      controller: cli.controller,
      ca: cli.ca,
      joinToken: cli.joinToken,
      host: cli.host,
      underlayIp,
      uplink: cli.uplink,
      labels: cli.labels,
      backoffMinMs: cli.backoffMinMs,
      backoffMaxMs: cli.backoffMaxMs,
      log,
    });
    const file = storeAgentToken(cli.stateDir, joined.agentToken);
    log(
      `joined as host ${cli.host} (${joined.hostId}${joined.rejoined ? ', re-joined' : ''}); agent token stored in ${file}`,
    );
    return joined.agentToken;
  } catch (e) {
    if (e instanceof JoinRefused) {
      console.error(`lattice-agent: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseAgentArgs>;
  try {
    parsed = parseAgentArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) fail(e.message);
    throw e;
  }
  if (parsed === 'help') return console.log(USAGE);
  if (parsed === 'version') return console.log(`lattice-agent ${programVersion()}`);
  const cli = parsed;
  for (const w of cli.warnings) console.error(`lattice-agent: warning: ${w}`);
  const token = await agentToken(cli);
  const dataplane = createDataplane(cli.dataplane, {
    netns: cli.netns,
    uplink: cli.uplink,
    stateDir: cli.stateDir,
    instanceNetnsPrefix: cli.instanceNetnsPrefix,
    commandTimeoutMs: cli.commandTimeoutMs,
  });
  const agent = new Agent({
    controller: cli.controller,
    host: cli.host,
    token,
    ca: cli.ca,
    dataplane,
    stateDir: cli.stateDir,
    heartbeatMs: cli.heartbeatMs,
    driftIntervalMs: cli.driftIntervalMs,
    backoffMinMs: cli.backoffMinMs,
    backoffMaxMs: cli.backoffMaxMs,
    fastRetryMaxMs: cli.fastRetryMaxMs,
    fastRetryWindowMs: cli.fastRetryWindowMs,
    controllerTimeoutMs: cli.controllerTimeoutMs,
    log,
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
