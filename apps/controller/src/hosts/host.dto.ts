import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches, ValidateIf } from 'class-validator';
import { IPV4_PATTERN, NAME_SCHEMA, OptionalLabels } from '../common/openapi.js';
import { IsIntIn, IsUnicastIpv4, IsObjectName, NAME_DESCRIPTION } from '../common/validators.js';

const UNICAST = 'a unicast address outside 0/8, 127/8, 169.254/16, 224/4 and 240/4';

const UPLINK = /^[A-Za-z0-9][A-Za-z0-9_-]{0,9}$/;

/** Optional uplink name: at most 10 characters, so that `<uplink>.<vid>` fits IFNAMSIZ. */
const Uplink = () =>
  applyDecorators(
    ApiPropertyOptional({
      default: 'eth0',
      description:
        'underlay interface; at most 10 characters so that `<uplink>.<vid>` fits IFNAMSIZ',
      type: 'string',
      pattern: UPLINK.source,
    }),
    IsOptional(),
    IsString(),
    Matches(UPLINK, {
      message: 'uplink must be an interface name of 1-10 characters (letters, digits, "_", "-")',
    }),
  );

/** Optional BGP ASN; `null` means the default (64512). */
const Asn = () =>
  applyDecorators(
    ApiPropertyOptional({
      type: 'integer',
      minimum: 1,
      maximum: 4294967295,
      nullable: true,
      description: 'BGP autonomous system number (null: the default 64512)',
      example: 64600,
    }),
    ValidateIf((_o, v) => v !== undefined && v !== null),
    IsIntIn(1, 4294967295),
  );

const Labels = () => OptionalLabels();

export class CreateHostDto {
  @ApiProperty({ ...NAME_SCHEMA, example: 'h1', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @ApiProperty({
    example: '192.0.2.11',
    description: `address of the host on the underlay (VTEP, BGP router id, next hop); ${UNICAST}`,
    format: 'ipv4',
    pattern: IPV4_PATTERN,
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
  @ApiPropertyOptional({
    description: `a new underlay address (VTEP, next hop, BGP router id); ${UNICAST}`,
    format: 'ipv4',
    pattern: IPV4_PATTERN,
    example: '192.0.2.12',
  })
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
