import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

/**
 * No Docker engine runs on these machines, so the dev stack is checked the way it can be:
 * the compose file parses, every build points at a Dockerfile that exists, and the agents
 * are started with flags the agent understands.
 */
interface Service {
  build?: { context: string; dockerfile: string };
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  cap_add?: string[];
  restart?: string;
}

const compose = parse(readFileSync('docker/compose.yaml', 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
};
const agentMain = readFileSync('apps/agent/src/main.ts', 'utf8');

describe('docker/compose.yaml', () => {
  it('has PostgreSQL, the controller and three agents', () => {
    expect(Object.keys(compose.services).sort()).toEqual([
      'agent-h1',
      'agent-h2',
      'agent-h3',
      'controller',
      'postgres',
    ]);
    expect(compose.services.controller.environment?.DATABASE_URL).toMatch(
      /^postgres:\/\/.*@postgres:5432\//,
    );
  });

  it('restarts every service that dies, and keeps agent tokens off the command line', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      expect({ name, restart: s.restart }).toEqual({ name, restart: 'unless-stopped' });
      expect({ name, token: (s.command ?? []).includes('--token') }).toEqual({
        name,
        token: false,
      });
    }
    expect(compose.services['agent-h2'].environment?.LATTICE_AGENT_TOKEN).toBe('${H2_TOKEN:-}');
  });

  it('builds from Dockerfiles that exist', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      if (!s.build) continue;
      const file = join('docker', s.build.context, s.build.dockerfile);
      expect({ name, exists: existsSync(file) }).toEqual({ name, exists: true });
    }
  });

  it('starts agents with NET_ADMIN and flags the agent accepts', () => {
    for (const name of ['agent-h1', 'agent-h2', 'agent-h3']) {
      const s = compose.services[name];
      expect(s.cap_add).toContain('NET_ADMIN');
      const flags = (s.command ?? []).filter((a) => a.startsWith('--')).map((a) => a.slice(2));
      expect(flags.length).toBeGreaterThan(0);
      for (const f of flags)
        expect({
          flag: f,
          known: agentMain.includes(`'${f}':`) || agentMain.includes(`${f}: {`),
        }).toEqual({ flag: f, known: true });
    }
  });
});
