import fastifyStatic from '@fastify/static';
import { Logger, RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { AppModule } from './app.module.js';
import { loadAdminToken } from './auth/tokens.js';
import { frameworkErrors, installHttpRules } from './common/http.js';
import { DASHBOARD_DIR } from './health/root.controller.js';
import { ApiValidationPipe } from './common/input-pipe.js';
import type { Config } from './config/config.js';
import { createDataSource, runMigrations } from './database/data-source.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from './database/embedded-postgres.js';
import { installLogger } from './logging/logger.js';
import { useRequestLogging } from './logging/request-log.js';
import { AgentWsAdapter } from './logging/ws-adapter.js';
import { PoolsService } from './pools/pools.service.js';

export const API_PREFIX = 'api/v1';

export interface Controller {
  readonly app: NestFastifyApplication;
  readonly dataSource: DataSource;
  readonly adminToken: string;
  /** True when this start generated the admin token (it is printed once). */
  readonly adminTokenCreated: boolean;
  readonly databaseUrl: string;
  readonly embedded: EmbeddedDatabase | undefined;
  close(): Promise<void>;
}

/**
 * Builds the controller: database (embedded when no DATABASE_URL), migrations, admin
 * token, then the NestJS application on Fastify. Does not listen; `main.ts` does.
 */
export async function createController(config: Config): Promise<Controller> {
  // JSON lines (or LATTICE_LOG_FORMAT=pretty) for every Logger, the framework's included.
  const logger = installLogger({ level: config.logLevel, format: config.logFormat });
  const log = new Logger('lattice');
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      supervise: true,
      report: log,
    });
    databaseUrl = embedded.url;
    log.log(`embedded PostgreSQL on 127.0.0.1:${embedded.port}, data in ${config.dataDir}`);
  }
  const dataSource = createDataSource(databaseUrl);
  try {
    await dataSource.initialize();
    const applied = await runMigrations(dataSource);
    if (applied.length > 0) log.log(`applied migrations: ${applied.join(', ')}`);
  } catch (e) {
    if (dataSource.isInitialized) await dataSource.destroy();
    await embedded?.stop();
    throw e;
  }
  const { token: adminToken, created } = loadAdminToken(config.dataDir, config.adminToken);

  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({
      config,
      dataSource,
      tokens: { admin: adminToken, viewer: config.viewerToken },
    }),
    // With TLS the one server speaks HTTPS, and the agents' WebSocket /agent (which rides
    // on it) WSS.
    new FastifyAdapter({
      bodyLimit: config.bodyLimit,
      frameworkErrors,
      ...(config.tls ? { https: { key: config.tls.key, cert: config.tls.cert } } : {}),
    }),
    {
      logger,
      abortOnError: false,
      bodyParser: false,
    },
  );
  // Request ids and one log line per request (logging/request-log.ts).
  useRequestLogging(app.getHttpAdapter().getInstance(), logger);
  // Bodies only as strict UTF-8 JSON (415 otherwise; empty means none), 405 with `Allow`
  // for a method a path does not have (common/http.ts).
  installHttpRules(app.getHttpAdapter().getInstance());
  // The dashboard's assets (web/, built into dist/web/ui); `GET /` serves its page.
  if (DASHBOARD_DIR) {
    await app.register(fastifyStatic, {
      root: join(DASHBOARD_DIR, 'ui'),
      prefix: '/ui/',
      decorateReply: false,
      cacheControl: true,
      maxAge: 0,
    });
  }
  app.useWebSocketAdapter(new AgentWsAdapter(app));
  // `GET /` (health/root.controller.ts) points at the API and its documents.
  app.setGlobalPrefix(API_PREFIX, { exclude: [{ path: '/', method: RequestMethod.GET }] });
  // The DTOs' rules, and text PostgreSQL cannot store refused before any query.
  app.useGlobalPipes(new ApiValidationPipe());
  const doc = new DocumentBuilder()
    .setTitle('Lattice')
    .setDescription(
      'SDN controller for virtual networks: hosts, networks, instances, routers. Every ' +
        'error is `{ statusCode, error, message, details? }`; every mutating call takes ' +
        '`?wait=applied&timeoutMs=N` and answers the `revision` at which it became visible.',
    )
    .setVersion('1')
    .setLicense('Apache-2.0', 'https://www.apache.org/licenses/LICENSE-2.0')
    .addServer('/', 'the controller serving this document')
    .addSecurity('bearer', {
      type: 'http',
      scheme: 'bearer',
      description:
        'The admin token (LATTICE_ADMIN_TOKEN, or generated into the data directory on first ' +
        'start) may do everything; the viewer token (LATTICE_VIEWER_TOKEN) may only read.',
    })
    .addSecurity('joinToken', {
      type: 'http',
      scheme: 'bearer',
      description: 'A join token (`POST /join-tokens`): only `POST /join` takes one.',
    })
    .addTag('health', 'liveness, without a token')
    .addTag('hosts', 'the machines that run an agent')
    .addTag('networks', 'virtual networks of any networking model')
    .addTag('instances', 'VMs or containers attached to a network on a host')
    .addTag('routers', 'distributed L3 routing between networks')
    .addTag('policies', 'network policy: who may talk to whom, previewed before it applies')
    .addTag('join-tokens', 'tokens agents trade for a host of their own (self-registration)')
    .addTag('floating-ips', 'external addresses bound 1:1 to instances, and their pools')
    .addTag('pools', 'VLAN id and VNI pools')
    .addTag('metrics', 'Prometheus metrics')
    .addTag('trace', 'packet trace computed from the desired state')
    .build();
  SwaggerModule.setup('api/docs', app, () => SwaggerModule.createDocument(app, doc));
  await app.init();
  await app.get(PoolsService).applyConfiguredRanges();

  return {
    app,
    dataSource,
    adminToken,
    adminTokenCreated: created,
    databaseUrl,
    embedded,
    async close() {
      await app.close();
      if (dataSource.isInitialized) await dataSource.destroy();
      await embedded?.stop();
    },
  };
}
