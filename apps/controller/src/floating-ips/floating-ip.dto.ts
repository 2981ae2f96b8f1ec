import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength, ValidateIf, registerDecorator } from 'class-validator';
import { parseCidr } from '../../../../libs/model/src/index.js';
import { IPV4_PATTERN, NAME_SCHEMA, REF_SCHEMA } from '../common/openapi.js';
import { IsIpv4Address, IsIpv4Cidr, IsObjectName, NAME_DESCRIPTION } from '../common/validators.js';

/** Largest and smallest floating IP pools accepted. */
export const POOL_MIN_PREFIX = 16;
export const POOL_MAX_PREFIX = 32;

function IsPoolPrefix(): PropertyDecorator {
  return (object, propertyName) =>
    registerDecorator({
      name: 'isPoolPrefix',
      target: object.constructor,
      propertyName: String(propertyName),
      options: { message: `$property must be a /${POOL_MIN_PREFIX} to /${POOL_MAX_PREFIX} CIDR` },
      validator: {
        validate: (v: unknown) => {
          const c = typeof v === 'string' ? parseCidr(v) : null;
          return c === null || (c.prefix >= POOL_MIN_PREFIX && c.prefix <= POOL_MAX_PREFIX);
        },
      },
    });
}

export class CreateFloatingIpPoolDto {
  @ApiProperty({ ...NAME_SCHEMA, example: 'public', description: NAME_DESCRIPTION })
  @IsObjectName()
  name!: string;

  @ApiProperty({
    example: '192.0.2.128/27',
    description:
      'external addresses, /16 to /32, with no host bits set: on the hosts’ underlay L2 (the ' +
      'hosting host answers ARP for its floating IPs) or routed to the hosts. It may not overlap ' +
      'another pool or any Lattice network (409). In a pool of /30 or larger the first and last ' +
      'addresses are not allocated; host underlay addresses inside it never are',
  })
  @IsIpv4Cidr()
  @IsPoolPrefix()
  cidr!: string;
}

/** `instance`: an instance named by id or name, or null (unbound). */
function InstanceRef(description: string, required: boolean) {
  const doc = { ...REF_SCHEMA, nullable: true, description };
  return applyDecorators(
    required ? ApiProperty(doc) : ApiPropertyOptional(doc),
    // Required: only null skips the checks (absent is a 400); optional: absent or null.
    ValidateIf((o: { instance?: unknown }) =>
      required ? o.instance !== null : o.instance != null,
    ),
    IsString(),
    MaxLength(63),
  );
}

export class CreateFloatingIpDto {
  @ApiProperty({ ...REF_SCHEMA, description: 'the pool, by id or name' })
  @IsString()
  @MaxLength(63)
  pool!: string;

  @ApiPropertyOptional({
    description: 'a free address of the pool; default: its lowest free one',
    format: 'ipv4',
    pattern: IPV4_PATTERN,
  })
  @IsOptional()
  @IsIpv4Address()
  address?: string;

  @InstanceRef('the instance to bind it to, by id or name; default: none (allocated only)', false)
  instance?: string | null;
}

export class UpdateFloatingIpDto {
  @InstanceRef('the instance to bind it to (id or name), or null to unbind it', true)
  instance!: string | null;
}
