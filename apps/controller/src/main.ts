import 'reflect-metadata';
import { createController } from './app.js';
import { ConfigError, loadConfig } from './config/config.js';

async function main(): Promise<void> {
  const config = loadConfig();
  const controller = await createController(config);
  await controller.app.listen({ port: config.port, host: config.host });
  const url = await controller.app.getUrl();
  console.log(
    `Lattice controller listening on ${url.replace('[::1]', '127.0.0.1')} (API /api/v1, docs /api/docs)`,
  );
  if (controller.adminTokenCreated) {
    console.log(
      `Admin token (shown once, stored in ${config.dataDir}/admin-token):\n  ${controller.adminToken}`,
    );
  }
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    console.log(`${signal}: shutting down`);
    controller.close().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((e: unknown) => {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
});
