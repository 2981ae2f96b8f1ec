import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional, registerDecorator } from 'class-validator';
import {
  ENCAPSULATIONS,
  NETWORK_MODELS,
  parseCidr,
  ROUTINGS,
  TRANSPORTS,
} from '../../../../libs/model/src/index.js';
import type {
  Encapsulation,
  NetworkModel,
  Routing,
  Transport,
} from '../../../../libs/model/src/index.js';
import { CIDR_PATTERN, IPV4_PATTERN, NAME_SCHEMA } from '../common/openapi.js';
import {
  IsIntIn,
  IsIpv4Address,
  IsIpv4Cidr,
  IsObjectName,
  NAME_DESCRIPTION,
} from '../common/validators.js';

/** Largest and smallest networks accepted: /8 (16,777,214 addresses) to /30. */
export const MIN_PREFIX = 8;
export const MAX_PREFIX = 30;

/**
 * A CIDR of /8 to /30. Allocation works on free ranges, so any size allocates in
 * milliseconds; a /31 or /32 has no address besides the gateway (shared subnets) or the
 * block's reserved ones (block-based models), and a network larger than a /8 is refused.
 */
function IsAcceptedPrefix(): PropertyDecorator {
  return (object, propertyName) =>
    registerDecorator({
      name: 'isAcceptedPrefix',
      target: object.constructor,
      propertyName: String(propertyName),
      options: {
        message: `$property must be a /${MIN_PREFIX} to /${MAX_PREFIX} network (a /30 has room for a gateway and one instance)`,
      },
      validator: {
        validate: (v: unknown) => {
          const c = typeof v === 'string' ? parseCidr(v) : null;
          return c === null || (c.prefix >= MIN_PREFIX && c.prefix <= MAX_PREFIX);
        },
      },
    });
}

/**
 * Field shapes are checked here; which fields belong to which model (and their defaults)
 * is checked by `networkParameters`, which names every offending field at once.
 */
@ApiSchema({
  description:
    'A network of one networking model. Besides `name`, `model`, `cidr` and `mtu`, each model ' +
    'takes only its own fields (any other is a 400 naming it): `bridge`: `gateway`; `vlan`: ' +
    '`gateway`, `vlanId`; `routed`: `routing`, `blockPrefixLen`; `overlay`: `encapsulation`, and ' +
    'with vxlan (the default) `gateway`, `vni`, with ipip/gre `blockPrefixLen`; `fabric`: ' +
    '`transport`, `gateway`, and with vxlan (the default) `vni`, with vlan `vlanId`.',
})
export class CreateNetworkDto {
  @ApiProperty({ ...NAME_SCHEMA, example: 'blue', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @ApiProperty({
    enum: NETWORK_MODELS,
    description:
      'the networking model; it decides which of the optional fields apply (the others are a 400)',
  })
  @IsIn(NETWORK_MODELS, { message: `model must be one of ${NETWORK_MODELS.join(', ')}` })
  model!: NetworkModel;

  @ApiProperty({
    example: '10.10.0.0/24',
    description:
      'an IPv4 CIDR of /8 to /30 with no host bits set, outside 0/8, 127/8, 169.254/16, 224/4 ' +
      'and 240/4. Isolated L2 networks may share a subnet; routable ones (block-based, or ' +
      'attached to a router) may not overlap (409)',
    pattern: CIDR_PATTERN,
  })
  @IsIpv4Cidr()
  @IsAcceptedPrefix()
  cidr!: string;

  @ApiPropertyOptional({
    description:
      'a usable address inside the CIDR; default: the first usable one. Not for block-based models',
    format: 'ipv4',
    pattern: IPV4_PATTERN,
  })
  @IsOptional()
  @IsIpv4Address()
  gateway?: string;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 576,
    maximum: 9000,
    default: 1500,
    description: 'underlay MTU; instances get it minus the encapsulation overhead',
  })
  @IsOptional()
  @IsIntIn(576, 9000)
  mtu?: number;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 4094,
    description:
      '`vlan`, and `fabric` with `transport: vlan` only; default: the lowest free id of the VLAN pool (409 when taken)',
  })
  @IsOptional()
  @IsIntIn(1, 4094)
  vlanId?: number;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 16777215,
    description:
      '`overlay` with `encapsulation: vxlan`, and `fabric` with `transport: vxlan` only; default: the lowest free VNI of the VNI pool (409 when taken)',
  })
  @IsOptional()
  @IsIntIn(1, 16777215)
  vni?: number;

  @ApiPropertyOptional({ enum: ENCAPSULATIONS, description: '`overlay` only; default vxlan' })
  @IsOptional()
  @IsIn(ENCAPSULATIONS, { message: `encapsulation must be one of ${ENCAPSULATIONS.join(', ')}` })
  encapsulation?: Encapsulation;

  @ApiPropertyOptional({ enum: ROUTINGS, description: '`routed` only; default static' })
  @IsOptional()
  @IsIn(ROUTINGS, { message: `routing must be one of ${ROUTINGS.join(', ')}` })
  routing?: Routing;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 8,
    maximum: 30,
    description:
      'block-based models only (`routed`; `overlay` with ipip/gre): the prefix length of each ' +
      "host's block, at least the CIDR's; default 26 (or the CIDR's when longer)",
  })
  @IsOptional()
  @IsIntIn(8, 30)
  blockPrefixLen?: number;

  @ApiPropertyOptional({ enum: TRANSPORTS, description: '`fabric` only; default vxlan' })
  @IsOptional()
  @IsIn(TRANSPORTS, { message: `transport must be one of ${TRANSPORTS.join(', ')}` })
  transport?: Transport;

  @NatOutgoing()
  natOutgoing?: boolean;
}

function NatOutgoing() {
  return applyDecorators(
    ApiPropertyOptional({
      type: 'boolean',
      default: false,
      description:
        "egress: the network's instances reach destinations outside every Lattice network " +
        "through their host, source-translated to the host's underlay address (any model)",
    }),
    IsOptional(),
    IsBoolean(),
  );
}

/** The fields of a network that can change after it was created. */
export class UpdateNetworkDto {
  @NatOutgoing()
  natOutgoing?: boolean;
}
