import 'reflect-metadata';
import { createController } from './app.js';
import { ConfigError, loadConfig } from './config/config.js';

async function main(): Promise<void> {
  const config = loadConfig();
  for (const w of config.warnings) console.warn(`warning: ${w}`);
  const controller = await createController(config);
  await controller.app.listen({ port: config.port, host: config.host });
  const url = (await controller.app.getUrl()).replace('[::1]', '127.0.0.1');
  // https:// when LATTICE_TLS_CERT_FILE/LATTICE_TLS_KEY_FILE are set; agents then use wss://.
  console.log(`Lattice controller listening on ${url} (API /api/v1, docs /api/docs)`);
  if (config.tls)
    console.log(
      `TLS with certificate ${config.tls.certFile}; agents connect to ${url.replace(/^http/, 'ws')}/agent`,
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
