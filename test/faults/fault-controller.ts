import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** The built controller; LATTICE_FAULT_CONTROLLER_MAIN runs another build (e.g. a mutant). */
const MAIN = resolve(
  process.env.LATTICE_FAULT_CONTROLLER_MAIN ?? 'dist/apps/controller/src/main.js',
);
export const FAULT_ADMIN_TOKEN = 'fault-admin-token-0123456789';

/** The built controller (`node dist/apps/controller/src/main.js`) in a child process. */
export interface ControllerProcess {
  readonly proc: ChildProcess;
  readonly url: string;
  readonly output: string[];
  /** Set once the process has exited: how. */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  alive(): boolean;
  /** Resolves once `GET /api/v1/health` answers 200. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export function spawnController(o: {
  databaseUrl: string;
  port: number;
  dataDir: string;
  env?: Record<string, string>;
}): ControllerProcess {
  if (!existsSync(MAIN))
    throw new Error(`${MAIN} is missing: run the tests through \`npm test\`, which builds first`);
  const proc = spawn(process.execPath, [MAIN], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      DATABASE_URL: o.databaseUrl,
      PORT: String(o.port),
      HOST: '127.0.0.1',
      LATTICE_ADMIN_TOKEN: FAULT_ADMIN_TOKEN,
      LATTICE_DATA_DIR: o.dataDir,
      LATTICE_LOG_LEVEL: 'log',
      NO_COLOR: '1',
      ...o.env,
    },
  });
  const output: string[] = [];
  const onData = (b: Buffer) => {
    for (const line of b.toString('utf8').split('\n')) if (line) output.push(line);
    if (output.length > 50_000) output.splice(0, output.length - 50_000);
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  const exited = new Promise<void>((r) =>
    proc.once('exit', (code, signal) => {
      self.exit = { code, signal };
      r();
    }),
  );
  const url = `http://127.0.0.1:${o.port}`;
  const self: ControllerProcess = {
    proc,
    url,
    output,
    exit: undefined,
    alive: () => self.exit === undefined,
    async waitHealthy(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (!self.alive())
          throw new Error(
            `controller exited (${JSON.stringify(self.exit)}):\n${output.slice(-40).join('\n')}`,
          );
        try {
          const r = await fetch(`${url}/api/v1/health`, { signal: AbortSignal.timeout(2000) });
          await r.arrayBuffer();
          if (r.status === 200) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline)
          throw new Error(
            `controller not healthy in ${timeoutMs} ms:\n${output.slice(-40).join('\n')}`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill9() {
      if (self.alive()) proc.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (self.alive()) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  return self;
}
