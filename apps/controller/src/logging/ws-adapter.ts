import { Logger } from '@nestjs/common';
import { WsAdapter } from '@nestjs/platform-ws';
import type { IncomingMessage } from 'node:http';
import type { WebSocket, WebSocketServer } from 'ws';

/**
 * NestJS's `WsAdapter`, but an error on one agent's connection (a frame over the size
 * limit, invalid UTF-8, a reset) is the client's doing: logged as one warning naming the
 * peer, without a stack, instead of an ERROR with a stack trace. The `ws` library has
 * already closed that connection (1009 for an oversized frame); the others are unaffected.
 * An error of the server itself stays an error.
 */
export class AgentWsAdapter extends WsAdapter {
  private readonly agentLog = new Logger('agents');

  override bindErrorHandler(server: WebSocketServer): WebSocketServer {
    server.on('connection', (ws: WebSocket, req: IncomingMessage) =>
      ws.on('error', (err: Error & { code?: string }) =>
        this.agentLog.warn(
          `${req?.url?.startsWith('/events') ? 'event subscriber' : 'agent'} connection from ${req?.socket?.remoteAddress ?? 'unknown'} closed: ${err.message}` +
            (err.code ? ` (${err.code})` : ''),
        ),
      ),
    );
    server.on('error', (err) => this.agentLog.error(err));
    return server;
  }
}
