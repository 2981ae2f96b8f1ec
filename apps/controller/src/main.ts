import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createController } from './app.js';
import { ConfigError, loadConfig } from './config/config.js';
import { installedLogger, installLogger } from './logging/logger.js';

const log = new Logger('lattice');

async function main(): Promise<void> {
  const config = loadConfig();
  installLogger({ level: config.logLevel, format: config.logFormat });
  for (const w of config.warnings) log.warn(w);
  const controller = await createController(config);
  await controller.app.listen({ port: config.port, host: config.host });
  const url = (await controller.app.getUrl()).replace('[::1]', '127.0.0.1');
  // https:// when LATTICE_TLS_CERT_FILE/LATTICE_TLS_KEY_FILE are set; agents then use wss://.
  log.log(`Lattice controller listening on ${url} (API /api/v1, docs /api/docs)`);
  if (config.tls)
    log.log(
      `TLS with certificate ${config.tls.certFile}; agents connect to ${url.replace(/^http/, 'ws')}/agent`,
    );
  if (controller.adminTokenCreated) {
    // Only on the start that generated it: a token given by the environment is never logged.
    log.log({
      msg: `admin token created (shown once, stored in ${config.dataDir}/admin-token)`,
      adminToken: controller.adminToken,
    });
  }
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    log.log(`${signal}: shutting down`);
    controller.close().then(
      () => process.exit(0),
      (e: unknown) => {
        log.error(e instanceof Error ? e : String(e));
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  // An invalid configuration is found before the logger is set up: the format as asked.
  if (!installedLogger())
    installLogger({
      level: 'log',
      format: process.env.LATTICE_LOG_FORMAT === 'pretty' ? 'pretty' : 'json',
    });
  if (e instanceof ConfigError) log.fatal({ msg: 'invalid configuration', problems: e.problems });
  else log.fatal(e instanceof Error ? e : String(e));
  process.exit(1);
});
