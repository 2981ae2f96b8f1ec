/** Response bodies of /networks (NetworkView in networks.service.ts), for the OpenAPI document. */
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  ENCAPSULATIONS,
  NETWORK_MODELS,
  ROUTINGS,
  TRANSPORTS,
} from '../../../../libs/model/src/index.js';
import { APPLIED_IN_MS } from '../common/openapi.js';

export class Network {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'blue' })
  name!: string;

  @ApiProperty({ enum: NETWORK_MODELS })
  model!: string;

  @ApiProperty({ example: '10.10.0.0/24' })
  cidr!: string;

  @ApiProperty({
    format: 'ipv4',
    description: 'the gateway of the subnet (block-based models: of the whole CIDR)',
  })
  gateway!: string;

  @ApiProperty({ type: 'integer', description: 'underlay MTU' })
  mtu!: number;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: '`vlan`, and `fabric` with `transport: vlan`; otherwise null',
  })
  vlanId!: number | null;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: '`overlay` with `encapsulation: vxlan`, and `fabric` with `transport: vxlan`',
  })
  vni!: number | null;

  @ApiProperty({
    type: 'string',
    enum: [...ENCAPSULATIONS, null],
    nullable: true,
    description: '`overlay` only',
  })
  encapsulation!: string | null;

  @ApiProperty({
    type: 'string',
    enum: [...ROUTINGS, null],
    nullable: true,
    description: '`routed` only',
  })
  routing!: string | null;

  @ApiProperty({
    type: 'integer',
    nullable: true,
    description: 'block-based models only (`routed`; `overlay` with ipip/gre)',
  })
  blockPrefixLen!: number | null;

  @ApiProperty({
    type: 'string',
    enum: [...TRANSPORTS, null],
    nullable: true,
    description: '`fabric` only',
  })
  transport!: string | null;

  @ApiProperty({
    type: 'integer',
    description: 'the MTU instances get: the network MTU minus the encapsulation overhead',
  })
  instanceMtu!: number;

  @ApiProperty({
    description:
      "egress: instances reach destinations outside every Lattice network through their host, source-translated to the host's underlay address",
  })
  natOutgoing!: boolean;

  @ApiProperty({
    description:
      'can meet other networks in a host routing table (block-based, or attached to a router): ' +
      'its CIDR may not overlap another routable network',
  })
  routable!: boolean;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description:
      'the revision of the last change of the network; in the answer to a change, the revision of that change',
  })
  revision!: number;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'instances on the network, counted when the answer is built',
  })
  instanceCount!: number;

  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description: 'hosts the network spans: the distinct hosts of its instances',
  })
  hostCount!: number;
}

/** The answer to POST /networks and PATCH /networks/{idOrName}. */
export class ChangedNetwork extends Network {
  @ApiPropertyOptional(APPLIED_IN_MS)
  appliedInMs?: number;
}
