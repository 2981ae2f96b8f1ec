import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built controller, as `npm start` runs it. */
const MAIN = fileURLToPath(new URL('../../dist/apps/controller/src/main.js', import.meta.url));
export const EMBEDDED_ADMIN_TOKEN = 'embedded-admin-token-0123456789';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `node dist/apps/controller/src/main.js` in a child process of its own, with no
 * DATABASE_URL: it runs (and supervises) its embedded PostgreSQL under `dataDir`.
 */
export class EmbeddedController {
  readonly output: string[] = [];
  readonly url: string;
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly proc: ChildProcess;
  private readonly exited: Promise<void>;

  constructor(o: { cwd: string; dataDir: string; port: number }) {
    if (!existsSync(MAIN))
      throw new Error(`${MAIN} is missing: run the tests through \`npm test\`, which builds first`);
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PORT: String(o.port),
      HOST: '127.0.0.1',
      LATTICE_DATA_DIR: o.dataDir,
      LATTICE_ADMIN_TOKEN: EMBEDDED_ADMIN_TOKEN,
      LATTICE_LOG_LEVEL: 'log',
      NO_COLOR: '1',
    };
    delete env.DATABASE_URL;
    this.proc = spawn(process.execPath, [MAIN], {
      cwd: o.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const onData = (b: Buffer) => {
      for (const line of b.toString('utf8').split('\n')) if (line.trim()) this.output.push(line);
    };
    this.proc.stdout!.on('data', onData);
    this.proc.stderr!.on('data', onData);
    this.exited = new Promise((r) =>
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal };
        r();
      }),
    );
    this.url = `http://127.0.0.1:${o.port}/api/v1`;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  alive(): boolean {
    return this.exit === undefined;
  }

  tail(n = 30): string {
    return this.output.slice(-n).join('\n');
  }

  /** An API call with the admin token: the status and the parsed body. */
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const r = await fetch(this.url + path, {
      method,
      headers: {
        authorization: `Bearer ${EMBEDDED_ADMIN_TOKEN}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : undefined };
  }

  /** Resolves once `GET /health` answers 200. */
  async waitHealthy(timeoutMs = 25_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive())
        throw new Error(`controller exited (${JSON.stringify(this.exit)}):\n${this.tail()}`);
      const status = await this.call('GET', '/health').then(
        (r) => r.status,
        () => 0,
      );
      if (status === 200) return;
      if (Date.now() > deadline)
        throw new Error(`controller not healthy in ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(50);
    }
  }

  async kill9(): Promise<void> {
    if (this.alive()) this.proc.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (the controller's clean shutdown), SIGKILL if it takes longer than `ms`. */
  async stop(ms = 20_000): Promise<void> {
    if (!this.alive()) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
  }
}
