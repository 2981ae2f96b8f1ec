import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiResponse, ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { Public } from '../auth/auth.guard.js';
import { ApiErrors, ApiPublicOp } from '../common/openapi.js';
import { Health } from './health.views.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly ds: DataSource) {}

  /** Liveness plus database reachability; 503 while PostgreSQL does not answer. */
  @Public()
  @Get()
  @ApiPublicOp(
    'getHealth',
    'Liveness and database reachability',
    'Needs no token. 200 while the controller and its database answer, 503 while the ' +
      'database does not.',
  )
  @ApiResponse({
    status: 200,
    description: 'The controller and its database answer.',
    type: Health,
  })
  @ApiErrors([
    503,
    'The database does not answer: `details` is `{ "status": "degraded", "database": "down" }`.',
  ])
  async health() {
    try {
      const [row] = await this.ds.query<{ r: string | null }[]>(
        'SELECT max(revision) AS r FROM revisions',
      );
      return { status: 'ok', database: 'up', revision: Number(row?.r ?? 0) };
    } catch {
      throw new ServiceUnavailableException({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'the database is unreachable',
        details: { status: 'degraded', database: 'down' },
      });
    }
  }
}
