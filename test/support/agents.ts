import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const MAIN = resolve('dist/apps/agent/src/main.js');

export interface AgentProcess {
  readonly proc: ChildProcess;
  readonly stateDir: string;
  readonly output: string[];
  /** What the memory data plane holds, as the process last wrote it. */
  applied(): { kind: string; key: string; spec: unknown }[];
  /** Resolves when a line matching `re` has been printed (after `since` lines). */
  waitFor(re: RegExp, timeoutMs?: number, since?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a real `lattice-agent` process (built by `npm test`'s pretest step). */
export function spawnAgent(o: {
  url: string;
  host: string;
  /** Passed as --token; leave it out to give the token otherwise (--token-file in `args`). */
  token?: string;
  stateDir: string;
  args?: string[];
}): AgentProcess {
  if (!existsSync(MAIN))
    throw new Error(`${MAIN} is missing: run the tests through \`npm test\`, which builds first`);
  const wsUrl = `${o.url.replace(/^http/, 'ws')}/agent`;
  const proc = spawn(
    process.execPath,
    [
      MAIN,
      '--controller',
      wsUrl,
      '--host',
      o.host,
      ...(o.token !== undefined ? ['--token', o.token] : []),
      '--dataplane',
      'memory',
      '--state-dir',
      o.stateDir,
      '--heartbeat-ms',
      '300',
      ...(o.args ?? []),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output: string[] = [];
  const waiters = new Set<() => void>();
  const onData = (b: Buffer) => {
    for (const line of b.toString('utf8').split('\n')) if (line) output.push(line);
    for (const w of waiters) w();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    stateDir: o.stateDir,
    output,
    applied() {
      const f = join(o.stateDir, 'memory-dataplane.json');
      return existsSync(f)
        ? (JSON.parse(readFileSync(f, 'utf8')) as { kind: string; key: string; spec: unknown }[])
        : [];
    },
    waitFor(re, timeoutMs = 10_000, since = 0) {
      return new Promise((ok, fail) => {
        const check = () => {
          const hit = output.slice(since).find((l) => re.test(l));
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            ok(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          fail(
            new Error(
              `agent ${o.host}: no line matching ${re} within ${timeoutMs} ms; output:\n${output.join('\n')}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
  };
}
