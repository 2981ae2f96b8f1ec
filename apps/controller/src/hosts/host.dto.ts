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
import { IsLabels, IsUnicastIpv4, NAME_MESSAGE, NAME_PATTERN } from '../common/validators.js';

export class CreateHostDto {
  @ApiProperty({ example: 'h1' })
  @IsString()
  @Matches(NAME_PATTERN, { message: NAME_MESSAGE })
  name!: string;

  @ApiProperty({
    example: '192.0.2.11',
    description: 'address of the host on the underlay (VTEP, BGP router id, next hop)',
  })
  @IsUnicastIpv4()
  underlayIp!: string;

  @ApiPropertyOptional({
    default: 'eth0',
    description: 'underlay interface; at most 10 characters so that `<uplink>.<vid>` fits IFNAMSIZ',
  })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9_-]{0,9}$/, {
    message: 'uplink must be an interface name of 1-10 characters (letters, digits, "_", "-")',
  })
  uplink?: string;

  @ApiPropertyOptional({ description: 'BGP autonomous system number (default 64512)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(4294967295)
  asn?: number;

  @ApiPropertyOptional({ example: { 'lattice.io/route-reflector': 'true' } })
  @IsOptional()
  @IsObject()
  @IsLabels()
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

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9_-]{0,9}$/, {
    message: 'uplink must be an interface name of 1-10 characters (letters, digits, "_", "-")',
  })
  uplink?: string;

  @ApiPropertyOptional({ nullable: true, description: 'null: back to the default (64512)' })
  @ValidateIf((_o, v) => v !== null && v !== undefined)
  @IsInt()
  @Min(1)
  @Max(4294967295)
  asn?: number | null;

  @ApiPropertyOptional({ example: { 'lattice.io/route-reflector': 'true' } })
  @IsOptional()
  @IsObject()
  @IsLabels()
  labels?: Record<string, string>;
}
