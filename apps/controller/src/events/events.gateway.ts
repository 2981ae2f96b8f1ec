import { OnGatewayConnection, WebSocketGateway } from '@nestjs/websockets';
import type WebSocket from 'ws';
import { EventsService } from './events.service.js';

/**
 * WebSocket endpoint `/events`: the live event stream for the dashboard and scripts.
 * Thin: EventsService authenticates (first message `{type:"auth",token,since?}`) and
 * sends. Subscribers send nothing else, so their frames are small.
 */
@WebSocketGateway({ path: '/events', maxPayload: 64 * 1024 })
export class EventsGateway implements OnGatewayConnection {
  constructor(private readonly events: EventsService) {}

  handleConnection(socket: WebSocket): void {
    this.events.accept(socket);
  }
}
