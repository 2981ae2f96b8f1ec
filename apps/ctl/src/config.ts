/**
 * Where latticectl finds the controller and its token. Each setting is taken from the
 * first of: a flag (`--server`, `--token`), the environment (`LATTICE_URL`,
 * `LATTICE_TOKEN`, else `LATTICE_ADMIN_TOKEN`), the config file (`--config`, else
 * `LATTICE_CONFIG`, else `~/.config/lattice/config`: YAML or JSON `{server, token}`, mode
 * 0600), and the defaults (`http://127.0.0.1:8080`; the token a local controller stored in
 * `${LATTICE_DATA_DIR:-.lattice}/admin-token`).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

export class ConfigProblem extends Error {}

export interface Settings {
  readonly server: string;
  readonly token: string | undefined;
  /** Where each came from, for `config view` and error messages. */
  readonly sources: { readonly server: string; readonly token: string };
  readonly configFile: string;
  readonly warnings: string[];
}

export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return (
    flag ??
    (env.LATTICE_CONFIG || undefined) ??
    join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'lattice', 'config')
  );
}

interface FileSettings {
  server?: string;
  token?: string;
}

export function readConfigFile(file: string, warnings: string[]): FileSettings {
  if (!existsSync(file)) return {};
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigProblem(
      `config file ${file} is not YAML or JSON: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
    );
  }
  if (raw === null || raw === undefined) return {};
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigProblem(`config file ${file} must hold a mapping {server, token}`);
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (k !== 'server' && k !== 'token')
      throw new ConfigProblem(`config file ${file}: unknown key "${k}" (known: server, token)`);
  for (const k of ['server', 'token'] as const)
    if (o[k] !== undefined && typeof o[k] !== 'string')
      throw new ConfigProblem(`config file ${file}: ${k} must be a string`);
  if (o.token !== undefined) {
    const mode = statSync(file).mode & 0o777;
    if ((mode & 0o077) !== 0)
      warnings.push(
        `config file ${file} holds a token and is readable by others (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 it`,
      );
  }
  return o;
}

function checkServer(server: string, source: string): string {
  if (!/^https?:\/\//.test(server) || !URL.canParse(server))
    throw new ConfigProblem(
      `the server (${source}) must be an http:// or https:// URL, got "${server}"`,
    );
  return server.replace(/\/+$/, '');
}

export function resolveSettings(
  flags: { server?: string; token?: string; config?: string },
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const warnings: string[] = [];
  const configFile = configPath(flags.config, env);
  if (flags.config !== undefined && !existsSync(flags.config))
    throw new ConfigProblem(`--config ${flags.config}: no such file`);
  const file = readConfigFile(configFile, warnings);
  const pick = (candidates: [string | undefined, string][]): [string | undefined, string] =>
    candidates.find(([v]) => v !== undefined && v !== '') ?? [undefined, 'none'];
  const [server, serverSource] = pick([
    [flags.server, '--server'],
    [env.LATTICE_URL, 'LATTICE_URL'],
    [file.server, configFile],
    [DEFAULT_SERVER, 'default'],
  ]);
  const adminTokenFile = join(env.LATTICE_DATA_DIR || '.lattice', 'admin-token');
  const local = existsSync(adminTokenFile)
    ? readFileSync(adminTokenFile, 'utf8').trim() || undefined
    : undefined;
  const [token, tokenSource] = pick([
    [flags.token, '--token'],
    [env.LATTICE_TOKEN, 'LATTICE_TOKEN'],
    [env.LATTICE_ADMIN_TOKEN, 'LATTICE_ADMIN_TOKEN'],
    [file.token, configFile],
    [local, adminTokenFile],
  ]);
  return {
    server: checkServer(server!, serverSource),
    token,
    sources: { server: serverSource, token: tokenSource },
    configFile,
    warnings,
  };
}

/** Writes `server`/`token` into the config file (created 0600, its folder 0700). */
export function writeConfig(file: string, changes: FileSettings): FileSettings {
  const warnings: string[] = [];
  const current = readConfigFile(file, warnings);
  const next: FileSettings = { ...current };
  if (changes.server !== undefined) next.server = checkServer(changes.server, '--server');
  if (changes.token !== undefined) next.token = changes.token;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const lines = Object.entries(next).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return next;
}
