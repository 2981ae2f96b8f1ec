/** Response bodies of /hosts (HostView in hosts.service.ts), for the OpenAPI document. */
import { ApiProperty, ApiPropertyOptional, type ApiPropertyOptions } from '@nestjs/swagger';
import { RESOURCE_KINDS } from '../../../../libs/engine/src/index.js';
import { REPORT_LIMITS } from '../../../../libs/protocol/src/index.js';
import { APPLIED_IN_MS } from '../common/openapi.js';

/**
 * An entry of an agent's report. The controller keeps what the agent sent (bounded in
 * number and message length), including fields of the agent's own: the schema is open.
 */
const report = (description: string, extra: Record<string, object> = {}): ApiPropertyOptions => ({
  type: 'array',
  description,
  items: {
    type: 'object',
    required: ['key', 'message', ...Object.keys(extra)],
    properties: {
      key: {
        type: 'string',
        description: 'the resource key (`*`: the entry that stands for those left out)',
        example: 'route:10.244.2.0/26',
      },
      message: { type: 'string', maxLength: REPORT_LIMITS.messageChars },
      ...extra,
    },
    additionalProperties: false,
  },
  maxItems: REPORT_LIMITS.errors,
});

export class AgentStatus {
  @ApiProperty({ description: 'an agent is connected to this controller (or a replica)' })
  connected!: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  lastSeen!: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'the version the agent reported' })
  version!: string | null;

  @ApiProperty(report('resources the agent failed to apply at its last status'))
  errors!: { key: string; message: string }[];

  @ApiProperty(
    report('differences the agent found between the kernel and the desired state', {
      repaired: { type: 'boolean', description: 'the agent put the resource back' },
    }),
  )
  drift!: { key: string; message: string; repaired: boolean }[];
}

const LABELS = {
  type: 'object',
  additionalProperties: { type: 'string' },
  example: { 'lattice.io/route-reflector': 'true' },
} as const;

export class Host {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'h1' })
  name!: string;

  @ApiProperty({ format: 'ipv4', example: '192.0.2.11' })
  underlayIp!: string;

  @ApiProperty({ example: 'eth0' })
  uplink!: string;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'null: the default ASN (64512)',
  })
  asn!: number | null;

  @ApiProperty(LABELS)
  labels!: Record<string, string>;

  @ApiProperty({ type: AgentStatus })
  agent!: AgentStatus;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'the latest revision that changed what this host must apply',
  })
  desiredRevision!: number;

  @ApiProperty({ type: 'integer', minimum: 0, description: 'the revision its agent applied' })
  appliedRevision!: number;

  @ApiProperty({
    description: 'an agent has reported and has applied every revision that concerns the host',
  })
  inSync!: boolean;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description:
      'the revision of the last change of the host itself; in the answer to a change, the revision of that change',
  })
  revision!: number;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'instances placed on the host, counted when the answer is built',
  })
  instanceCount!: number;
}

/** The answer to PATCH /hosts/{idOrName}. */
export class ChangedHost extends Host {
  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}

/** The answer to POST /hosts and to POST /hosts/{idOrName}/agent-token. */
export class HostWithAgentToken extends ChangedHost {
  @ApiProperty({
    description:
      "the agent token: shown this once (only its hash is stored); give it to the host's agent",
    pattern: '^lah_[A-Za-z0-9_-]{43}$',
  })
  agentToken!: string;
}

export class Resource {
  @ApiProperty({ enum: RESOURCE_KINDS })
  kind!: string;

  @ApiProperty({
    description: 'stable key naming the kernel object, `<kind>:<id>`',
    example: 'route:10.244.2.0/26',
  })
  key!: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'what the agent applies; its fields depend on `kind` (DESIGN.md, "Desired state")',
  })
  spec!: Record<string, unknown>;
}

export class DesiredState {
  @ApiProperty({ description: 'the host name' })
  host!: string;

  @ApiProperty({ format: 'uuid' })
  hostId!: string;

  @ApiProperty({ type: 'integer', minimum: 0, description: 'the revision this state is at' })
  revision!: number;

  @ApiProperty({
    type: [Resource],
    description:
      'in apply order: devices before what lives on them (ports, addresses, FDB, routes), then BGP and filters',
  })
  resources!: Resource[];
}
