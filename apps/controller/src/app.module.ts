import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { AgentMetrics } from './agents/agent-metrics.js';
import { AgentSessions } from './agents/agent-sessions.service.js';
import { AgentGateway } from './agents/agent.gateway.js';
import { WaitAppliedInterceptor } from './agents/wait-applied.interceptor.js';
import { API_TOKENS, AuthGuard, type ApiTokens } from './auth/auth.guard.js';
import { ApiExceptionFilter } from './common/errors.js';
import { CONFIG, type Config } from './config/config.js';
import { EventsGateway } from './events/events.gateway.js';
import { EventsService } from './events/events.service.js';
import {
  FloatingIpPoolsController,
  FloatingIpsController,
} from './floating-ips/floating-ips.controller.js';
import { FloatingIpPoolsService } from './floating-ips/floating-ip-pools.service.js';
import { FloatingIpsService } from './floating-ips/floating-ips.service.js';
import { HealthController } from './health/health.controller.js';
import { RootController } from './health/root.controller.js';
import { HostsController } from './hosts/hosts.controller.js';
import { HostsService } from './hosts/hosts.service.js';
import { InstancesController } from './instances/instances.controller.js';
import { InstancesService } from './instances/instances.service.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { HostMetrics } from './metrics/host-metrics.js';
import { MetricsService } from './metrics/metrics.service.js';
import { NetworksController } from './networks/networks.controller.js';
import { NetworksService } from './networks/networks.service.js';
import { JoinController, JoinTokensController } from './join-tokens/join-tokens.controller.js';
import { JoinTokensService } from './join-tokens/join-tokens.service.js';
import { PoolsController } from './pools/pools.controller.js';
import { PoolsService } from './pools/pools.service.js';
import { CompactionService } from './revisions/compaction.service.js';
import { RevisionLog } from './revisions/revision-log.js';
import { DesiredStateService } from './desired-state/desired-state.service.js';
import { RevisionListener } from './desired-state/revision-listener.js';
import { PoliciesController } from './policies/policies.controller.js';
import { PoliciesService } from './policies/policies.service.js';
import { RoutersController } from './routers/routers.controller.js';
import { RoutersService } from './routers/routers.service.js';
import { TraceController } from './trace/trace.controller.js';
import { TraceService } from './trace/trace.service.js';

export interface AppDeps {
  config: Config;
  dataSource: DataSource;
  tokens: ApiTokens;
}

@Module({})
export class AppModule {
  static forRoot(deps: AppDeps): DynamicModule {
    return {
      module: AppModule,
      controllers: [
        RootController,
        HealthController,
        HostsController,
        NetworksController,
        InstancesController,
        RoutersController,
        PoliciesController,
        FloatingIpPoolsController,
        FloatingIpsController,
        JoinTokensController,
        JoinController,
        PoolsController,
        MetricsController,
        TraceController,
      ],
      providers: [
        { provide: CONFIG, useValue: deps.config },
        { provide: DataSource, useValue: deps.dataSource },
        { provide: API_TOKENS, useValue: deps.tokens },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ApiExceptionFilter },
        { provide: APP_INTERCEPTOR, useClass: WaitAppliedInterceptor },
        AgentMetrics,
        AgentSessions,
        AgentGateway,
        EventsService,
        EventsGateway,
        DesiredStateService,
        RevisionListener,
        RevisionLog,
        CompactionService,
        PoolsService,
        FloatingIpPoolsService,
        FloatingIpsService,
        HostsService,
        NetworksService,
        InstancesService,
        RoutersService,
        PoliciesService,
        JoinTokensService,
        MetricsService,
        HostMetrics,
        TraceService,
      ],
    };
  }
}
