import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateIf,
} from 'class-validator';
import { IsLabels, IsUnicastIpv4, IsObjectName, NAME_DESCRIPTION } from '../common/validators.js';

/** Optional uplink name: at most 10 characters, so that `<uplink>.<vid>` fits IFNAMSIZ. */
const Uplink = () =>
  applyDecorators(
    ApiPropertyOptional({
      default: 'eth0',
      description:
        'underlay interface; at most 10 characters so that `<uplink>.<vid>` fits IFNAMSIZ',
    }),
    IsOptional(),
    IsString(),
    Matches(/^[A-Za-z0-9][A-Za-z0-9_-]{0,9}$/, {
      message: 'uplink must be an interface name of 1-10 characters (letters, digits, "_", "-")',
    }),
  );

/** Optional BGP ASN; `null` means the default (64512). */
const Asn = () =>
  applyDecorators(
    ApiPropertyOptional({
      nullable: true,
      description: 'BGP autonomous system number (null: the default 64512)',
    }),
    ValidateIf((_o, v) => v !== undefined && v !== null),
    IsInt(),
    Min(1),
    Max(4294967295),
  );

const Labels = () =>
  applyDecorators(
    ApiPropertyOptional({ example: { 'lattice.io/route-reflector': 'true' } }),
    IsOptional(),
    IsObject(),
    IsLabels(),
  );

export class CreateHostDto {
  @ApiProperty({ example: 'h1', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @ApiProperty({
    example: '192.0.2.11',
    description: 'address of the host on the underlay (VTEP, BGP router id, next hop)',
  })
  @IsUnicastIpv4()
  underlayIp!: string;

  @Uplink()
  uplink?: string;

  @Asn()
  asn?: number | null;

  @Labels()
  labels?: Record<string, string>;
}

/**
 * What may change on a registered host. `asn: null` returns to the default ASN; `labels`
 * replaces the whole set (e.g. to add or remove the route-reflector label).
 */
export class UpdateHostDto {
  @ApiPropertyOptional({ description: 'a new underlay address (VTEP, next hop, BGP router id)' })
  @IsOptional()
  @IsUnicastIpv4()
  underlayIp?: string;

  @Uplink()
  uplink?: string;

  @Asn()
  asn?: number | null;

  @Labels()
  labels?: Record<string, string>;
}
