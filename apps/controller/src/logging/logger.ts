import { Logger, type LoggerService, type LogLevel } from '@nestjs/common';
import { format, inspect } from 'node:util';
import { pino, type DestinationStream, type Level, type Logger as Pino } from 'pino';

/**
 * The controller's logs: one JSON object per line on stdout (pino), or, with
 * `LATTICE_LOG_FORMAT=pretty`, one readable line per event for a terminal. Every NestJS
 * `Logger` (`new Logger('agents')`, the framework's own) writes through `NestPinoLogger`,
 * its context in a `context` field.
 *
 * A line: `{"level":"info","time":"…","pid":1,"hostname":"…","context":"agents","msg":"…"}`,
 * plus the fields of the event (a request's `reqId`, `method`, `path`, `status`,
 * `durationMs`, see request-log.ts; an error's `err` with its `type`, `message` and `stack`).
 */

export type LogFormat = 'json' | 'pretty';

/** `LATTICE_LOG_LEVEL` (NestJS's names) → pino's levels. */
const PINO_LEVEL: Record<'error' | 'warn' | 'log' | 'debug', Level> = {
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
};

/** NestJS's own level names, least verbose first, and pino's for each. */
const NEST_TO_PINO: Record<LogLevel, Level> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/**
 * Framework contexts whose `log` lines (modules initialised, every route mapped) tell an
 * operator nothing: they are written at debug. Their warnings and errors keep their level.
 */
const FRAMEWORK_CONTEXTS = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestApplication',
  'WebSocketsController',
]);

export interface LoggerOptions {
  level: 'error' | 'warn' | 'log' | 'debug';
  format: LogFormat;
  /** Where lines go; stdout (synchronously, so no line is lost on exit) by default. */
  destination?: DestinationStream;
}

/**
 * An error as pino serializes it (`type`, `message`, `stack`, its own fields), less the
 * bound parameters of a failed query (TypeORM's `parameters`): values such as a token's
 * hash have no place in a log; the query text stays.
 */
function serializeError(e: unknown): unknown {
  const out = pino.stdSerializers.err(e as Error) as unknown;
  if (typeof out === 'object' && out !== null && 'parameters' in out) {
    const { parameters: _dropped, ...rest } = out as Record<string, unknown>;
    return rest;
  }
  return out;
}

/** A pino logger writing the controller's line format. */
export function createPino(o: LoggerOptions): Pino {
  const out = o.destination ?? pino.destination({ dest: 1, sync: true });
  return pino(
    {
      level: PINO_LEVEL[o.level],
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
    },
    o.format === 'pretty' ? prettyStream(out) : out,
  );
}

/** The NestJS `LoggerService` over pino: what `new Logger(context)` writes through. */
export class NestPinoLogger implements LoggerService {
  constructor(readonly pino: Pino) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }
  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }
  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }
  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }
  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }
  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  /** `app.useLogger([...levels])` and `Logger.overrideLogger([...])`: the most verbose wins. */
  setLogLevels(levels: LogLevel[]): void {
    const order: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];
    const most = order.filter((l) => levels.includes(l)).pop();
    this.pino.level = most ? NEST_TO_PINO[most] : 'silent';
  }

  /**
   * NestJS's calling convention: `Logger` appends its context as the last argument, and
   * `error(message, stack?, context)` may carry a stack; `message` may be an Error or an
   * object of fields.
   */
  private write(level: Level, message: unknown, params: unknown[]): void {
    const rest = [...params];
    const fields: Record<string, unknown> = {};
    if (rest.length > 0 && typeof rest[rest.length - 1] === 'string') {
      fields.context = rest.pop();
    }
    if (level === 'info' && FRAMEWORK_CONTEXTS.has(fields.context as string)) level = 'debug';
    if (!this.pino.isLevelEnabled(level)) return;
    let msg: string | undefined;
    if (message instanceof Error) {
      fields.err = message;
      msg = message.message;
    } else if (typeof message === 'object' && message !== null) {
      Object.assign(fields, message);
      msg = typeof fields.msg === 'string' ? fields.msg : undefined;
      delete fields.msg;
    } else {
      msg = String(message);
    }
    if (level === 'error' && typeof rest[0] === 'string' && /\n\s+at /.test(rest[0])) {
      fields.err = { type: 'Error', message: msg, stack: rest.shift() };
    }
    const extra = rest.filter((p) => p !== undefined);
    if (extra.length > 0) msg = format(msg ?? '', ...extra);
    this.pino[level](fields, msg);
  }
}

let current: NestPinoLogger | undefined;

/**
 * Makes every NestJS `Logger` of the process write through a new pino logger with these
 * options, and returns it (give it to `NestFactory.create` as `logger`).
 */
export function installLogger(o: LoggerOptions): NestPinoLogger {
  current = new NestPinoLogger(createPino(o));
  Logger.overrideLogger(current);
  return current;
}

/** The logger installed last (request-log.ts writes the request lines through it). */
export function installedLogger(): NestPinoLogger | undefined {
  return current;
}

// ---------------------------------------------------------------------------------------
// LATTICE_LOG_FORMAT=pretty: each JSON line rewritten for a person.

const COLORS: Record<string, string> = {
  trace: '90',
  debug: '36',
  info: '32',
  warn: '33',
  error: '31',
  fatal: '35',
};
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'context', 'msg', 'err']);
/** A request line's message already says them (`GET /path 200`). */
const SKIP_HTTP = new Set([...SKIP, 'method', 'path', 'status']);

/**
 * `12:00:01.234 INFO  [agents] agent 0.1.0 of h1 connected … key=value`, then an error's
 * stack on the lines below. Colours only on a terminal, and never with NO_COLOR.
 */
export function prettyLine(line: string, color: boolean): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const text = (v: unknown) =>
    typeof v === 'string' ? v : v === undefined ? '' : inspect(v, { breakLength: Infinity });
  const level = text(o.level);
  const time = typeof o.time === 'string' ? o.time.slice(11, 23) : '';
  const tag = level.toUpperCase().padEnd(5);
  const lvl = color && COLORS[level] ? `\x1b[${COLORS[level]}m${tag}\x1b[0m` : tag;
  const ctx = o.context ? ` [${text(o.context)}]` : '';
  const skip = o.context === 'http' ? SKIP_HTTP : SKIP;
  const kv = Object.entries(o)
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${text(v)}`);
  const err = o.err as { stack?: string; message?: string } | undefined;
  const stack = err?.stack ? `\n${err.stack}` : err?.message ? ` err=${err.message}` : '';
  return `${time} ${lvl}${ctx} ${text(o.msg)}${kv.length ? ' ' + kv.join(' ') : ''}${stack}\n`;
}

function prettyStream(out: DestinationStream): DestinationStream {
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  return { write: (line: string) => out.write(prettyLine(line, color)) };
}
