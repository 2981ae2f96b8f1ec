/** Response bodies of /join-tokens, for the OpenAPI document. */
import { ApiProperty } from '@nestjs/swagger';
import { HostWithAgentToken } from '../hosts/host.views.js';

export const JOIN_TOKEN_STATES = ['active', 'expired', 'used-up', 'revoked'] as const;
export type JoinTokenState = (typeof JOIN_TOKEN_STATES)[number];

export class JoinToken {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'rack-7' })
  name!: string;

  @ApiProperty()
  description!: string;

  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } })
  labels!: Record<string, string>;

  @ApiProperty()
  allowRejoin!: boolean;

  @ApiProperty({ type: 'integer' })
  maxUses!: number;

  @ApiProperty({ type: 'integer', description: 'joins it has allowed' })
  uses!: number;

  @ApiProperty({ enum: JOIN_TOKEN_STATES, description: 'whether an agent may join with it now' })
  state!: JoinTokenState;

  @ApiProperty({ format: 'date-time' })
  expiresAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  revokedAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  lastUsedAt!: string | null;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
}

export class JoinTokenWithSecret extends JoinToken {
  @ApiProperty({
    example: 'ljt_3q2…',
    description: 'the token, shown this once: only its hash is stored',
  })
  token!: string;
}

export class RevokedJoinToken extends JoinToken {
  @ApiProperty({ type: 'boolean', enum: [true] })
  revoked!: true;
}

export class JoinedHost extends HostWithAgentToken {
  @ApiProperty({ description: 'the join token used', example: 'rack-7' })
  joinToken!: string;

  @ApiProperty({
    description: 'the host existed and was taken over (new agent token; the old one is revoked)',
  })
  rejoined!: boolean;
}
