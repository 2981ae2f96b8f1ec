import 'reflect-metadata';
import { programVersion } from '../../../libs/version/src/index.js';

const USAGE = `usage: lattice-controller [--help | --version]      (npm start)
The Lattice controller takes no arguments: it is configured by environment variables.
  PORT                           HTTP(S) port; default 8080
  HOST                           address to listen on; default 0.0.0.0
  DATABASE_URL                   postgres:// URL of the database; unset: an embedded PostgreSQL
                                 under LATTICE_DATA_DIR
  LATTICE_DATA_DIR               data folder (embedded database, admin token); default .lattice
  LATTICE_ADMIN_TOKEN            the admin token (16+ characters); unset: generated once and
                                 stored in LATTICE_DATA_DIR/admin-token
  LATTICE_ADMIN_TOKEN_FILE       a file holding the admin token (instead of LATTICE_ADMIN_TOKEN)
  LATTICE_VIEWER_TOKEN           an optional read-only token (16+ characters): GET routes only
  LATTICE_VIEWER_TOKEN_FILE      a file holding the viewer token
  LATTICE_JOIN_TOKEN             a join token (16+ characters) installed at every start as "bootstrap"
  LATTICE_JOIN_TOKEN_FILE        a file holding it (instead of LATTICE_JOIN_TOKEN)
  LATTICE_JOIN_TOKEN_USES        joins the bootstrap token allows from each start; default 100
  LATTICE_JOIN_TOKEN_TTL_S       the bootstrap token is valid this long from each start; default 86400
  LATTICE_JOIN_TOKEN_REJOIN      true: a host may join again under its taken name; default false
  LATTICE_VLAN_POOL              VLAN pool START-END within 1-4094; unset: the stored range stays
  LATTICE_VNI_POOL               VNI pool START-END within 1-16777215; unset: the stored range stays
  LATTICE_BODY_LIMIT             largest request body, bytes; default 2097152 (2 MiB)
  LATTICE_TLS_CERT_FILE          PEM certificate chain: HTTPS, and wss:// for agents (with the key)
  LATTICE_TLS_KEY_FILE           PEM private key of LATTICE_TLS_CERT_FILE; both unset: plain HTTP
  LATTICE_LOG_LEVEL              error, warn, log or debug; default log
  LATTICE_LOG_FORMAT             json (one object per line) or pretty; default json
  LATTICE_AGENT_TIMEOUT_MS       an agent silent this long is disconnected; default 30000
  LATTICE_HELLO_TIMEOUT_MS       how long a new agent connection may take to say hello; default 5000
  LATTICE_AGENT_QUEUE_BYTES      bytes that may wait for an agent that does not read before it is
                                 disconnected; default 33554432 (32 MiB)
  LATTICE_REVISION_RETENTION     revisions the log keeps at least; default 10000
  LATTICE_REVISION_MIN_AGE_MS    a revision younger than this is kept whatever the retention;
                                 default 600000
  LATTICE_SQL_LOG                1: log every SQL query`;

// The arguments first, before the configuration and before NestJS is even loaded: --help and
// --version answer at once, whatever the environment holds.
const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
if (argv.includes('--version') || argv.includes('-V')) {
  console.log(`lattice-controller ${programVersion()}`);
  process.exit(0);
}
if (argv.length > 0) {
  const what = argv[0].startsWith('-') ? 'unknown option' : 'unexpected argument';
  console.error(`lattice-controller: ${what} "${argv[0]}"\n${USAGE}`);
  process.exit(2);
}

const [{ Logger }, { createController }, { ConfigError, loadConfig }, logging] = await Promise.all([
  import('@nestjs/common'),
  import('./app.js'),
  import('./config/config.js'),
  import('./logging/logger.js'),
]);
const { installedLogger, installLogger } = logging;

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
