import { connect, createServer, type Server, type Socket } from 'node:net';

interface Pair {
  readonly client: Socket;
  upstream: Socket | undefined;
  /** Nothing passes, in either direction, not even a close. */
  silent: boolean;
}

/**
 * A TCP proxy in front of the controller, to drop the network between it and an agent:
 * `blackhole()` stops forwarding without closing anything (as a partition does: bytes,
 * FINs and RSTs are lost; new connections hang), `heal()` forwards again (the connections
 * that lived through the partition are reset, as their peers have given them up), `cut()`
 * resets every connection at once.
 */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private blackholed = false;
  /** Connections accepted since start. */
  accepted = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok());
    });
    const addr = server.address();
    const proxy = new TcpProxy(
      server,
      typeof addr === 'object' && addr ? addr.port : 0,
      targetPort,
    );
    server.on('connection', (c) => proxy.accept(c));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get connections(): number {
    return this.pairs.size;
  }

  private accept(client: Socket): void {
    this.accepted++;
    const pair: Pair = { client, upstream: undefined, silent: this.blackholed };
    this.pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      if (!pair.silent) pair.upstream?.destroy();
      if (!pair.silent) this.pairs.delete(pair);
    });
    if (!pair.silent) this.forward(pair);
  }

  private forward(pair: Pair): void {
    const { client } = pair;
    const up = connect({ port: this.targetPort, host: '127.0.0.1', allowHalfOpen: true });
    pair.upstream = up;
    up.on('error', () => undefined);
    up.on('close', () => {
      if (pair.silent) return;
      client.destroy();
      this.pairs.delete(pair);
    });
    client.on('data', (b) => {
      if (!pair.silent) up.write(b);
    });
    up.on('data', (b) => {
      if (!pair.silent) client.write(b);
    });
    client.on('end', () => {
      if (!pair.silent) up.end();
    });
    up.on('end', () => {
      if (!pair.silent) client.end();
    });
  }

  /** Stops forwarding on every connection, and accepts new ones without forwarding. */
  blackhole(): void {
    this.blackholed = true;
    for (const p of this.pairs) p.silent = true;
  }

  /** Forwards new connections again; those that lived through the partition are reset. */
  heal(): void {
    this.blackholed = false;
    for (const p of [...this.pairs]) {
      if (!p.silent) continue;
      this.pairs.delete(p);
      p.client.resetAndDestroy();
      p.upstream?.resetAndDestroy();
    }
  }

  /** Resets every connection (RST both ways); new connections are forwarded. */
  cut(): void {
    for (const p of [...this.pairs]) {
      this.pairs.delete(p);
      p.silent = true;
      p.client.resetAndDestroy();
      p.upstream?.resetAndDestroy();
    }
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
