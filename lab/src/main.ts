#!/usr/bin/env node
/**
 * `npm run lab -- up|down|status|exec`: the lab CLI. Everything it does is in lab.ts,
 * which the real-packet tests drive directly; its arguments are parsed by args.ts.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { programVersion } from '../../libs/version/src/index.js';
import { parseLabArgs, UsageError, type LabArgs } from './args.js';
import { controllerFromEnv } from './controller-client.js';
import {
  DEFAULTS,
  execArgv,
  formatStatus,
  labDown,
  labStatus,
  labUp,
  readState,
  type LabState,
} from './lab.js';

const USAGE = `usage: npm run lab -- <command> [options]

  up [--hosts ${DEFAULTS.hosts}] [--prefix ${DEFAULTS.prefix}] [--underlay ${DEFAULTS.underlay}]
        builds the lab (or completes it): an underlay switch namespace, N host namespaces
        wired to it (eth0, and eth0.<vid> for every VLAN of the controller's VLAN pool),
        registers the hosts h1…hN with the controller and starts one linux agent per host
  status                     hosts, agents, revisions and instances
  exec <instance> -- <cmd…>  runs a command inside an instance's namespace: everything after
                             the first -- is the command, untouched (without --: everything
                             after the instance name)
  down [--deregister]        removes every namespace, process and file of the lab
                             (--deregister: also delete its hosts from the controller)

Options go before or after the command (for exec: anywhere before the command it runs).
common options:
  --dir ${DEFAULTS.dir}       where the lab keeps its state, agent logs and pid files
  --prefix P       up: the namespace prefix of a new lab (default ${DEFAULTS.prefix});
                   status, exec, down: fail unless the lab in --dir has prefix P
  -h, --help       this text
  -V, --version    the version (lab <version>)

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

/** The lab's state must carry the --prefix asked for (the state itself is found by --dir). */
function checkPrefix(s: LabState | null, dir: string, prefix: string | undefined): void {
  if (s && prefix !== undefined && s.prefix !== prefix) {
    fail(
      `the lab in ${resolve(dir)} has prefix "${s.prefix}", not "${prefix}": give the --dir ` +
        `of the lab with prefix "${prefix}", or leave --prefix out`,
    );
  }
}

async function main(): Promise<void> {
  let args: LabArgs;
  try {
    args = parseLabArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError) fail(`${e.message}\n${USAGE}`, 2);
    throw e;
  }
  const log = (line: string) => console.log(line);
  switch (args.command) {
    case 'help':
      console.log(USAGE);
      return;
    case 'version':
      console.log(`lab ${programVersion()}`);
      return;
    case 'exec': {
      const { dir, prefix } = args.options;
      const s = readState(dir);
      if (!s) fail(`no lab in ${resolve(dir)}: start one with \`npm run lab -- up\``);
      checkPrefix(s, dir, prefix);
      const full = await execArgv(s, args.instance, args.cmd);
      const r = spawnSync(full[0], full.slice(1), { stdio: 'inherit' });
      process.exit(r.status ?? 1);
    }
    case 'up': {
      const o = args.options;
      const { url, token } = needToken();
      const { state, elapsedMs } = await labUp({
        dir: o.dir,
        prefix: o.prefix,
        hosts: o.hosts,
        underlay: o.underlay,
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
      const { dir, prefix } = args.options;
      checkPrefix(readState(dir), dir, prefix);
      const c = controllerFromEnv();
      const st = await labStatus({ dir, controllerUrl: c.url, adminToken: c.token });
      console.log(formatStatus(st));
      return;
    }
    case 'down': {
      const { dir, prefix } = args.options;
      checkPrefix(readState(dir), dir, prefix);
      const deregister = args.options.deregister
        ? (() => {
            const { url, token } = needToken();
            return { controllerUrl: url, adminToken: token };
          })()
        : undefined;
      await labDown({ dir, deregister, log });
      return;
    }
  }
}

main().catch((e: unknown) => fail(e instanceof Error ? e.message : String(e)));
