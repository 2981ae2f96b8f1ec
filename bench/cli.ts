/**
 * The benchmarks' command line: `parseArgs` with `-h/--help` and `-V/--version` added, the
 * usage on stdout for --help, `<name> <version>` for --version, and for an unknown option
 * or a bad value the message and the usage on stderr with exit 2. One prelude for every
 * bench program.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;
import { programVersion } from '../libs/version/src/index.js';

export interface BenchCli<T extends Options> {
  readonly values: ReturnType<typeof parseArgs<{ options: T; strict: true }>>['values'];
  /** Exits 2 with the message and the usage. */
  readonly usageError: (message: string) => never;
}

export function benchCli<T extends Options>(name: string, usage: string, options: T): BenchCli<T> {
  const usageError = (message: string): never => {
    console.error(`${name}: ${message}\n${usage}`);
    process.exit(2);
  };
  const all = {
    ...options,
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'V' },
  } as const;
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ options: all, strict: true }));
  } catch (e) {
    return usageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  if (values.version) {
    console.log(`${name} ${programVersion()}`);
    process.exit(0);
  }
  return { values: values as BenchCli<T>['values'], usageError };
}
