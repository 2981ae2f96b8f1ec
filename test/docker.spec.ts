import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseAgentArgs } from '../apps/agent/src/cli.js';
import { loadConfig } from '../apps/controller/src/config/config.js';

/**
 * No Docker engine runs on these machines, so the dev stack is checked the way it can be:
 * the compose file parses, every build points at a Dockerfile that exists and starts a
 * program the build makes, and every program is started with a command line and an
 * environment that program accepts (the agent's own parser, the controller's own config).
 * The join flow the agents use is tested end to end in test/agents/join.e2e.ts.
 */
interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  cap_add?: string[];
  restart?: string;
  volumes?: string[];
}

const compose = parse(readFileSync('docker/compose.yaml', 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const agents = ['agent-h1', 'agent-h2', 'agent-h3'];

/** `${NAME:-default}` as compose interpolates it with nothing set in the environment. */
function interpolate(env: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      String(v).replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, (_m, d: string) => d),
    ]),
  );
}

describe('docker/compose.yaml', () => {
  it('has PostgreSQL, the controller and three agents', () => {
    expect(Object.keys(compose.services).sort()).toEqual([...agents, 'controller', 'postgres']);
    expect(compose.services.controller.environment?.DATABASE_URL).toMatch(
      /^postgres:\/\/.*@postgres:5432\//,
    );
  });

  it('restarts every service that dies, and keeps tokens off the command line', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect({ name, restart: s.restart }).toEqual({ name, restart: 'unless-stopped' });
      const secretFlags = (s.command ?? []).filter((a) => /^--(join-)?token$/.test(a));
      expect({ name, secretFlags }).toEqual({ name, secretFlags: [] });
    }
  });

  it('builds from Dockerfiles that exist, each starting a program the build makes', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (!s.build) {
        expect({ name, image: s.image }).toEqual({ name, image: expect.any(String) });
        continue;
      }
      const file = join('docker', s.build.context, s.build.dockerfile);
      expect({ name, exists: existsSync(file) }).toEqual({ name, exists: true });
      const text = readFileSync(file, 'utf8');
      expect(text).toMatch(/RUN npm run build/);
      const start = /^(?:ENTRYPOINT|CMD) \[(.*)\]$/m.exec(text);
      expect({ name, start: Boolean(start) }).toEqual({ name, start: true });
      const program = (JSON.parse(`[${start![1]}]`) as string[]).find((a) => a.endsWith('.js'))!;
      // the Dockerfile runs `npm run build`; this is the same program in this checkout's build
      const source = program.replace(/^dist\//, '').replace(/\.js$/, '.ts');
      expect({ name, source: existsSync(source) }).toEqual({ name, source: true });
    }
  });

  it('starts the controller with an environment its configuration accepts, join token included', () => {
    const env = interpolate(compose.services.controller.environment);
    const config = loadConfig(env);
    expect(config.databaseUrl).toBe('postgres://lattice:lattice@postgres:5432/lattice');
    expect(config.bootstrapJoin).toMatchObject({ allowRejoin: true });
  });

  it('starts agents with NET_ADMIN, a command line the agent accepts and the join token', () => {
    const controllerJoin = interpolate(compose.services.controller.environment).LATTICE_JOIN_TOKEN;
    const hosts = new Set<string>();
    for (const name of agents) {
      const s = compose.services[name];
      expect(s.cap_add).toEqual(expect.arrayContaining(['NET_ADMIN', 'SYS_ADMIN']));
      const env = interpolate(s.environment);
      const cli = parseAgentArgs(s.command ?? [], env);
      if (typeof cli === 'string') throw new Error(`${name}: the command line asks for --${cli}`);
      // plain ws:// on the stack's private network is the one thing worth a warning
      expect(cli.warnings.filter((w) => !w.startsWith('ws:// sends'))).toEqual([]);
      expect(cli.joinToken).toBe(controllerJoin);
      expect(cli.token).toBeUndefined();
      expect(cli.dataplane).toBe('linux');
      expect(cli.controller).toBe('ws://controller:8080/agent');
      hosts.add(cli.host);
      // the state (and the agent token a join stores) survives a container's restart
      const volume = (s.volumes ?? []).find((v) => v.endsWith(`:${cli.stateDir}`));
      expect({ name, volume }).toEqual({ name, volume: expect.any(String) });
      expect(Object.keys(compose.volumes ?? {})).toContain(volume!.split(':')[0]);
    }
    expect([...hosts].sort()).toEqual(['h1', 'h2', 'h3']);
  });
});
