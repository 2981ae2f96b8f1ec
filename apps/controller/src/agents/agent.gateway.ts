import { OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import type WebSocket from 'ws';
import { MAX_FRAME_BYTES } from '../../../../libs/protocol/src/index.js';
import { AgentSessions } from './agent-sessions.service.js';

/**
 * WebSocket endpoint `/agent`. Thin: frames are parsed and handled by AgentSessions. The
 * `ws` server itself refuses frames over MAX_FRAME_BYTES (close 1009).
 */
@WebSocketGateway({ path: '/agent', maxPayload: MAX_FRAME_BYTES })
export class AgentGateway implements OnGatewayConnection {
  constructor(private readonly sessions: AgentSessions) {}

  handleConnection(socket: WebSocket): void {
    this.sessions.accept(socket);
  }
}
