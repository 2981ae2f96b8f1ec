import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Max, Min, registerDecorator } from 'class-validator';
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
import { IsIpv4Address, IsIpv4Cidr, IsObjectName, NAME_DESCRIPTION } from '../common/validators.js';

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
export class CreateNetworkDto {
  @ApiProperty({ example: 'blue', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @ApiProperty({ enum: NETWORK_MODELS })
  @IsIn(NETWORK_MODELS, { message: `model must be one of ${NETWORK_MODELS.join(', ')}` })
  model!: NetworkModel;

  @ApiProperty({ example: '10.10.0.0/24', description: 'prefix length /8 to /30' })
  @IsIpv4Cidr()
  @IsAcceptedPrefix()
  cidr!: string;

  @ApiPropertyOptional({ description: 'default: first usable address; not for block-based models' })
  @IsOptional()
  @IsIpv4Address()
  gateway?: string;

  @ApiPropertyOptional({
    default: 1500,
    description: 'underlay MTU; instances get it minus the encapsulation overhead',
  })
  @IsOptional()
  @IsInt()
  @Min(576)
  @Max(9000)
  mtu?: number;

  @ApiPropertyOptional({ description: 'vlan, fabric/vlan: default from the VLAN pool' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(4094)
  vlanId?: number;

  @ApiPropertyOptional({ description: 'overlay/vxlan, fabric/vxlan: default from the VNI pool' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(16777215)
  vni?: number;

  @ApiPropertyOptional({ enum: ENCAPSULATIONS, description: 'overlay only; default vxlan' })
  @IsOptional()
  @IsIn(ENCAPSULATIONS, { message: `encapsulation must be one of ${ENCAPSULATIONS.join(', ')}` })
  encapsulation?: Encapsulation;

  @ApiPropertyOptional({ enum: ROUTINGS, description: 'routed only; default static' })
  @IsOptional()
  @IsIn(ROUTINGS, { message: `routing must be one of ${ROUTINGS.join(', ')}` })
  routing?: Routing;

  @ApiPropertyOptional({
    description: 'block-based models (routed; overlay ipip/gre): per-host block size, default 26',
  })
  @IsOptional()
  @IsInt()
  @Min(8)
  @Max(30)
  blockPrefixLen?: number;

  @ApiPropertyOptional({ enum: TRANSPORTS, description: 'fabric only; default vxlan' })
  @IsOptional()
  @IsIn(TRANSPORTS, { message: `transport must be one of ${TRANSPORTS.join(', ')}` })
  transport?: Transport;
}
