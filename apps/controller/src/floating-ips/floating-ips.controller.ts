import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiParam,
  ApiPropertyOptional,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { ApiIdOrName, ApiMutation, ApiOp, ApiPage, ApiRead, Deleted } from '../common/openapi.js';
import { PageQuery } from '../common/pagination.js';
import {
  CreateFloatingIpDto,
  CreateFloatingIpPoolDto,
  UpdateFloatingIpDto,
} from './floating-ip.dto.js';
import {
  ChangedFloatingIp,
  CreatedFloatingIpPool,
  FloatingIp,
  FloatingIpPool,
} from './floating-ip.views.js';
import { FloatingIpPoolsService } from './floating-ip-pools.service.js';
import { FloatingIpsService } from './floating-ips.service.js';

@ApiTags('floating-ips')
@ApiBearerAuth()
@Controller('floating-ip-pools')
export class FloatingIpPoolsController {
  constructor(private readonly pools: FloatingIpPoolsService) {}

  @Post()
  @ApiOp(
    'createFloatingIpPool',
    'Create a floating IP pool',
    'A CIDR of external addresses that floating IPs are allocated from. It may not overlap ' +
      'another pool or a Lattice network.',
  )
  @ApiResponse({ status: 201, description: 'The pool.', type: CreatedFloatingIpPool })
  @ApiMutation({
    conflict: 'The name is taken, or the CIDR overlaps another pool or a network.',
  })
  create(@Body() dto: CreateFloatingIpPoolDto) {
    return this.pools.create(dto.name, dto.cidr);
  }

  @Get()
  @ApiOp('listFloatingIpPools', 'List floating IP pools', 'Pools in name order, with their use.')
  @ApiPage(FloatingIpPool, 'A page of pools.')
  @ApiRead({ query: true })
  list(@Query() q: PageQuery) {
    return this.pools.list(q);
  }

  @Get(':idOrName')
  @ApiOp('getFloatingIpPool', 'Get a floating IP pool', 'One pool, with its size and use.')
  @ApiIdOrName('floating IP pool')
  @ApiResponse({ status: 200, description: 'The pool.', type: FloatingIpPool })
  @ApiRead({ notFound: 'No such pool.' })
  get(@Param('idOrName') idOrName: string) {
    return this.pools.get(idOrName);
  }

  @Delete(':idOrName')
  @HttpCode(200)
  @ApiOp(
    'deleteFloatingIpPool',
    'Delete a floating IP pool',
    'Deletes a pool with no floating IPs.',
  )
  @ApiIdOrName('floating IP pool')
  @ApiResponse({ status: 200, description: 'The pool is deleted.', type: Deleted })
  @ApiMutation({ notFound: 'No such pool.', conflict: 'Floating IPs of the pool still exist.' })
  delete(@Param('idOrName') idOrName: string) {
    return this.pools.delete(idOrName);
  }
}

class FloatingIpListQuery extends PageQuery {
  @ApiPropertyOptional({ description: 'only floating IPs of this pool (id or name)' })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  pool?: string;
}

/** The path parameter `idOrAddress`. */
const ApiIdOrAddress = () =>
  ApiParam({
    name: 'idOrAddress',
    description: "the floating IP's id (a UUID) or its address (a.b.c.d); anything else: 404",
    schema: { type: 'string', minLength: 1 },
  });

@ApiTags('floating-ips')
@ApiBearerAuth()
@Controller('floating-ips')
export class FloatingIpsController {
  constructor(private readonly floatingIps: FloatingIpsService) {}

  @Post()
  @ApiOp(
    'createFloatingIp',
    'Allocate a floating IP',
    'Allocates an address of a pool (the lowest free one unless `address` is given), ' +
      'optionally bound to an instance: inbound traffic to it reaches the instance (1:1 DNAT), ' +
      'the instance’s outbound traffic leaves as it, and its host answers ARP for it.',
  )
  @ApiResponse({ status: 201, description: 'The floating IP.', type: ChangedFloatingIp })
  @ApiMutation({
    notFound: 'No such pool or instance.',
    conflict:
      'The address is taken or is a host’s underlay address, the pool is exhausted, or the instance already has a floating IP.',
  })
  create(@Body() dto: CreateFloatingIpDto) {
    return this.floatingIps.create(dto);
  }

  @Get()
  @ApiOp('listFloatingIps', 'List floating IPs', 'Floating IPs in address order.')
  @ApiPage(FloatingIp, 'A page of floating IPs.')
  @ApiRead({ query: true, notFound: 'No such pool.' })
  list(@Query() q: FloatingIpListQuery) {
    return this.floatingIps.list(q);
  }

  @Get(':idOrAddress')
  @ApiOp('getFloatingIp', 'Get a floating IP', 'One floating IP, with its instance and host.')
  @ApiIdOrAddress()
  @ApiResponse({ status: 200, description: 'The floating IP.', type: FloatingIp })
  @ApiRead({ notFound: 'No such floating IP.' })
  get(@Param('idOrAddress') ref: string) {
    return this.floatingIps.get(ref);
  }

  @Patch(':idOrAddress')
  @ApiOp(
    'updateFloatingIp',
    'Bind or unbind a floating IP',
    '`instance`: the instance to bind it to (it moves there from any other), or null to unbind it.',
  )
  @ApiIdOrAddress()
  @ApiResponse({ status: 200, description: 'The floating IP as changed.', type: ChangedFloatingIp })
  @ApiMutation({
    notFound: 'No such floating IP or instance.',
    conflict: 'The instance already has a floating IP.',
  })
  update(@Param('idOrAddress') ref: string, @Body() dto: UpdateFloatingIpDto) {
    return this.floatingIps.update(ref, dto.instance);
  }

  @Delete(':idOrAddress')
  @HttpCode(200)
  @ApiOp(
    'deleteFloatingIp',
    'Release a floating IP',
    'Releases the address to its pool; a bound instance loses it (and its way in).',
  )
  @ApiIdOrAddress()
  @ApiResponse({ status: 200, description: 'The floating IP is released.', type: Deleted })
  @ApiMutation({ notFound: 'No such floating IP.' })
  delete(@Param('idOrAddress') ref: string) {
    return this.floatingIps.delete(ref);
  }
}
