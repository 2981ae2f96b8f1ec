/**
 * The lab CLI's arguments (`npm run lab -- …`), parsed without side effects so that they can
 * be tested: options go anywhere (before or after the command, and for `exec` before or after
 * the instance name); for `exec`, everything after the first `--` is the command, untouched,
 * and without a `--` everything after the instance name is.
 */
import { parseArgs } from 'node:util';
import { DEFAULTS } from './lab.js';

/** A command line the lab does not accept: main prints the message and the usage, exit 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export type LabCommand = 'up' | 'down' | 'status' | 'exec';

export interface LabOptions {
  /** Where the lab keeps its state (`lab.json`), agent logs and pid files. */
  readonly dir: string;
  /** up: the namespace prefix of a new lab; status, exec, down: the one the lab must have. */
  readonly prefix?: string;
  /** up only. */
  readonly hosts?: number;
  /** up only. */
  readonly underlay?: string;
  /** down only: also delete the lab's hosts from the controller. */
  readonly deregister: boolean;
}

export type LabArgs =
  | { readonly command: 'help' }
  | { readonly command: 'version' }
  | { readonly command: 'up' | 'status' | 'down'; readonly options: LabOptions }
  | {
      readonly command: 'exec';
      readonly options: LabOptions;
      readonly instance: string;
      readonly cmd: readonly string[];
    };

const COMMANDS: readonly LabCommand[] = ['up', 'down', 'status', 'exec'];

type OptionName = 'dir' | 'prefix' | 'hosts' | 'underlay' | 'deregister' | 'help' | 'version';

interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** The commands it applies to; undefined: all. */
  readonly commands?: readonly LabCommand[];
}

const OPTIONS: Readonly<Record<OptionName, OptionSpec>> = {
  dir: { type: 'string' },
  prefix: { type: 'string' },
  hosts: { type: 'string', commands: ['up'] },
  underlay: { type: 'string', commands: ['up'] },
  deregister: { type: 'boolean', commands: ['down'] },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
};

const isOption = (name: string): name is OptionName => Object.hasOwn(OPTIONS, name);

/** `argv`: the arguments after the program (`process.argv.slice(2)`). */
export function parseLabArgs(argv: readonly string[]): LabArgs {
  // Non-strict: this pass only splits the line; the lab's own part is checked below, and the
  // exec command (which has options of its own, `ping -c1`) is never looked at.
  const { tokens } = parseArgs({
    args: [...argv],
    options: Object.fromEntries(
      Object.entries(OPTIONS).map(([k, v]) => [
        k,
        v.short === undefined ? { type: v.type } : { type: v.type, short: v.short },
      ]),
    ),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const positionals: string[] = [];
  const options: { name: string; rawName: string; value: string | undefined; inline: boolean }[] =
    [];
  let cmd: string[] | undefined;
  for (const t of tokens) {
    if (t.kind === 'option-terminator') {
      cmd = argv.slice(t.index + 1);
      break;
    }
    if (t.kind === 'positional') {
      if (positionals[0] === 'exec' && positionals.length === 2) {
        cmd = argv.slice(t.index); // exec <instance> <cmd…>: no `--`
        break;
      }
      positionals.push(t.value);
    } else {
      options.push({
        name: t.name,
        rawName: t.rawName,
        value: t.value,
        inline: t.inlineValue === true,
      });
    }
  }

  // --help and --version answer whatever else the line holds.
  if (options.some((o) => o.name === 'help') || positionals[0] === 'help' || argv.length === 0) {
    return { command: 'help' };
  }
  if (options.some((o) => o.name === 'version')) return { command: 'version' };

  const values: { [K in OptionName]?: string | true } = {};
  for (const o of options) {
    if (!isOption(o.name)) throw new UsageError(`unknown option ${o.rawName}`);
    if (OPTIONS[o.name].type === 'boolean') {
      if (o.value !== undefined) throw new UsageError(`${o.rawName} takes no value`);
      values[o.name] = true;
    } else {
      // A value that looks like an option is a forgotten value (`--dir --hosts 3`);
      // `--dir=-x` still says it on purpose.
      if (o.value === undefined || (!o.inline && o.value.startsWith('-')))
        throw new UsageError(`${o.rawName} needs a value`);
      values[o.name] = o.value;
    }
  }

  const command = positionals[0];
  if (command === undefined) {
    throw new UsageError(`no command: give one of ${COMMANDS.join(', ')}`);
  }
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(`unknown command "${command}"`);
  }
  const c = command as LabCommand;
  for (const name of Object.keys(values) as OptionName[]) {
    const spec = OPTIONS[name];
    if (spec.commands && !spec.commands.includes(c)) {
      throw new UsageError(`--${name} applies to ${spec.commands.join(', ')} only, not ${c}`);
    }
  }
  const str = (name: OptionName) => {
    const v = values[name];
    return typeof v === 'string' ? v : undefined;
  };
  let hosts: number | undefined;
  const rawHosts = str('hosts');
  if (rawHosts !== undefined) {
    if (!/^\d+$/.test(rawHosts))
      throw new UsageError(`--hosts must be an integer, not "${rawHosts}"`);
    hosts = Number(rawHosts);
  }
  const parsed: LabOptions = {
    dir: str('dir') ?? DEFAULTS.dir,
    deregister: values.deregister === true,
    ...(str('prefix') !== undefined ? { prefix: str('prefix') } : {}),
    ...(hosts !== undefined ? { hosts } : {}),
    ...(str('underlay') !== undefined ? { underlay: str('underlay') } : {}),
  };

  if (c === 'exec') {
    const instance = positionals[1];
    if (instance === undefined) {
      throw new UsageError('exec needs an instance: exec <instance> -- <command…>');
    }
    if (cmd === undefined || cmd.length === 0) {
      throw new UsageError(`exec needs a command: exec ${instance} -- <command…>`);
    }
    return { command: 'exec', options: parsed, instance, cmd };
  }
  const extra = [...positionals.slice(1), ...(cmd ?? [])];
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" after ${c}`);
  return { command: c, options: parsed };
}
