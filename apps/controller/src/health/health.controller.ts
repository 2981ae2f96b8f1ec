import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { Public } from '../auth/auth.guard.js';

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly ds: DataSource) {}

  /** Liveness plus database reachability; 503 while PostgreSQL does not answer. */
  @Public()
  @Get()
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
