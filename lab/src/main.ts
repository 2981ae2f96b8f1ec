#!/usr/bin/env node
/**
 * `npm run lab -- up|down|status|exec`: the lab CLI. Everything it does is in lab.ts,
 * which the real-packet tests drive directly.
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { controllerFromEnv } from './controller-client.js';
import { DEFAULTS, execArgv, formatStatus, labDown, labStatus, labUp, readState } from './lab.js';

const USAGE = `usage: npm run lab -- <command> [options]

  up [--hosts ${DEFAULTS.hosts}] [--prefix ${DEFAULTS.prefix}] [--underlay ${DEFAULTS.underlay}]
        builds the lab (or completes it): an underlay switch namespace, N host namespaces
        wired to it (eth0, and eth0.<vid> for every VLAN of the controller's VLAN pool),
        registers the hosts h1…hN with the controller and starts one linux agent per host
  status                     hosts, agents, revisions and instances
  exec <instance> -- <cmd…>  runs a command inside an instance's namespace
  down [--deregister]        removes every namespace, process and file of the lab
                             (--deregister: also delete its hosts from the controller)

common options:
  --dir ${DEFAULTS.dir}    where the lab keeps its state, agent logs and pid files

The controller is found through LATTICE_URL (default http://127.0.0.1:8080) and
LATTICE_ADMIN_TOKEN (default: the token in \${LATTICE_DATA_DIR:-.lattice}/admin-token).
Needs root (network namespaces). The controller's VLAN pool must be small
(e.g. LATTICE_VLAN_POOL=100-109): one veth per host and VLAN is pre-wired.`;

function fail(message: string, code = 1): never {
  console.error(`lab: ${message}`);
  process.exit(code);
}

function needToken(): { url: string; token: string } {
  const c = controllerFromEnv();
  if (!c.token) {
    fail(
      `no admin token: set LATTICE_ADMIN_TOKEN, or start the controller (npm start) so that ` +
        `${c.tokenSource} exists (run the lab from the repository folder)`,
    );
  }
  return { url: c.url, token: c.token };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const command = argv[0];
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return;
  }
  if (command === 'exec') {
    // exec <instance> [--dir D] [--] <command…>: everything after the instance name (and
    // an optional `--`) is the command, untouched.
    let rest = argv.slice(1);
    let dir: string = DEFAULTS.dir;
    if (rest[0] === '--dir') {
      dir = rest[1];
      rest = rest.slice(2);
    }
    const instance = rest[0];
    let cmd = rest.slice(1);
    if (cmd[0] === '--') cmd = cmd.slice(1);
    if (!instance || cmd.length === 0) fail(`usage: exec <instance> -- <command…>`, 2);
    const s = readState(dir);
    if (!s) fail(`no lab in ${dir}: start one with \`npm run lab -- up\``);
    const full = await execArgv(s, instance, cmd);
    const r = spawnSync(full[0], full.slice(1), { stdio: 'inherit' });
    process.exit(r.status ?? 1);
  }

  let values;
  try {
    ({ values } = parseArgs({
      args: argv.slice(1),
      options: {
        hosts: { type: 'string' },
        prefix: { type: 'string' },
        underlay: { type: 'string' },
        dir: { type: 'string', default: DEFAULTS.dir },
        deregister: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    fail(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`, 2);
  }
  const log = (line: string) => console.log(line);
  switch (command) {
    case 'up': {
      const { url, token } = needToken();
      const hosts = values.hosts === undefined ? undefined : Number(values.hosts);
      const { state, elapsedMs } = await labUp({
        dir: values.dir,
        prefix: values.prefix,
        hosts,
        underlay: values.underlay,
        controllerUrl: url,
        adminToken: token,
        log,
      });
      console.log(
        `lab up in ${(elapsedMs / 1000).toFixed(1)} s: ${state.hosts.length} hosts, agents in sync. ` +
          `Try \`npm run lab -- status\`.`,
      );
      return;
    }
    case 'status': {
      const c = controllerFromEnv();
      const st = await labStatus({ dir: values.dir, controllerUrl: c.url, adminToken: c.token });
      console.log(formatStatus(st));
      return;
    }
    case 'down': {
      const deregister = values.deregister
        ? (() => {
            const { url, token } = needToken();
            return { controllerUrl: url, adminToken: token };
          })()
        : undefined;
      await labDown({ dir: values.dir, deregister, log });
      return;
    }
    default:
      fail(`unknown command "${command}"\n${USAGE}`, 2);
  }
}

main().catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
