import WebSocket from 'ws';
import { encode, MAX_FRAME_BYTES } from '../../libs/protocol/src/index.js';

/** A hand-driven agent connection: the test says what to send, and sees every frame. */
export interface RawAgent {
  readonly ws: WebSocket;
  /** Frames received and not yet taken by `next()`. */
  readonly frames: any[];
  /** When and how the socket closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The next frame; rejects if the socket closes first (no test hangs on a refusal). */
  next(): Promise<any>;
  /** Sends a hello for `host`. */
  hello(host: string, token: string, appliedRevision?: number, cluster?: string): void;
}

/** Opens `/agent` of the controller at `baseUrl` (http://…), without saying anything yet. */
export function connectRawAgent(baseUrl: string, maxPayload = MAX_FRAME_BYTES): Promise<RawAgent> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/agent`, { maxPayload });
  const frames: any[] = [];
  const waiting: ((f: any) => void)[] = [];
  ws.on('message', (d: Buffer) => {
    const f = JSON.parse(d.toString());
    const w = waiting.shift();
    if (w) w(f);
    else frames.push(f);
  });
  const closed = new Promise<{ code: number; reason: string }>((r) =>
    ws.on('close', (code, reason) => r({ code, reason: reason.toString() })),
  );
  return new Promise((ok, fail) => {
    ws.on('open', () =>
      ok({
        ws,
        frames,
        closed,
        next: () =>
          frames.length
            ? Promise.resolve(frames.shift())
            : Promise.race([
                new Promise((r) => waiting.push(r)),
                closed.then((c) =>
                  Promise.reject(new Error(`closed ${c.code} ${c.reason} before a frame`)),
                ),
              ]),
        hello: (host, token, appliedRevision = 0, cluster) =>
          ws.send(helloFrame(host, token, appliedRevision, cluster)),
      }),
    );
    ws.on('error', fail);
  });
}

export const helloFrame = (host: string, token: string, appliedRevision = 0, cluster?: string) =>
  encode({
    type: 'hello',
    host,
    token,
    appliedRevision,
    agentVersion: 'test',
    ...(cluster ? { cluster } : {}),
  });
