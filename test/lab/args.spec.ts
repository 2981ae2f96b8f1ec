import { describe, expect, it } from '@jest/globals';
import { parseLabArgs, UsageError } from '../../lab/src/args.js';
import { DEFAULTS } from '../../lab/src/lab.js';

const usageError = (argv: string[]): string => {
  try {
    parseLabArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) return e.message;
    throw e;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
};

const defaults = { dir: DEFAULTS.dir, deregister: false };

describe('parseLabArgs', () => {
  it('exec: options before the instance, the command after -- untouched', () => {
    expect(
      parseLabArgs(['exec', '--prefix', 'P', 'web1', '--', 'ping', '-c1', '10.0.0.2']),
    ).toEqual({
      command: 'exec',
      options: { ...defaults, prefix: 'P' },
      instance: 'web1',
      cmd: ['ping', '-c1', '10.0.0.2'],
    });
  });

  it('exec: options after the instance, before --', () => {
    expect(parseLabArgs(['exec', 'web1', '--dir', 'D', '--', 'ip', 'a'])).toEqual({
      command: 'exec',
      options: { ...defaults, dir: 'D' },
      instance: 'web1',
      cmd: ['ip', 'a'],
    });
  });

  it('exec: options before the command word', () => {
    expect(parseLabArgs(['--dir=D', 'exec', 'web1', '--', 'ip', 'a'])).toMatchObject({
      options: { dir: 'D' },
      instance: 'web1',
    });
  });

  it('exec: after the first --, lab options, --help and further -- belong to the command', () => {
    expect(
      parseLabArgs(['exec', 'web1', '--', 'sh', '-c', 'x', '--', '--dir', 'E', '--help', '-V']),
    ).toMatchObject({
      options: { dir: DEFAULTS.dir },
      cmd: ['sh', '-c', 'x', '--', '--dir', 'E', '--help', '-V'],
    });
  });

  it('exec without --: everything after the instance name is the command', () => {
    expect(parseLabArgs(['exec', 'web1', 'ping', '-c1', '--dir', 'x', '--', 'y'])).toEqual({
      command: 'exec',
      options: defaults,
      instance: 'web1',
      cmd: ['ping', '-c1', '--dir', 'x', '--', 'y'],
    });
    expect(parseLabArgs(['exec', '--dir', 'D', 'web1', 'ip', '--help'])).toMatchObject({
      options: { dir: 'D' },
      cmd: ['ip', '--help'],
    });
  });

  it('exec without a command, or without an instance', () => {
    expect(usageError(['exec', 'web1'])).toMatch(/exec needs a command/);
    expect(usageError(['exec', 'web1', '--'])).toMatch(/exec needs a command/);
    expect(usageError(['exec', 'web1', '--dir', 'D'])).toMatch(/exec needs a command/);
    expect(usageError(['exec'])).toMatch(/exec needs an instance/);
    expect(usageError(['exec', '--', 'ping'])).toMatch(/exec needs an instance/);
  });

  it('up --hosts 3, and --hosts 3 up', () => {
    const up = { command: 'up', options: { ...defaults, hosts: 3 } };
    expect(parseLabArgs(['up', '--hosts', '3'])).toEqual(up);
    expect(parseLabArgs(['--hosts', '3', 'up'])).toEqual(up);
    expect(parseLabArgs(['--hosts=3', 'up'])).toEqual(up);
    expect(
      parseLabArgs(['--underlay', '198.51.100.0/24', 'up', '--prefix', 'lb', '--dir', 'D']),
    ).toEqual({
      command: 'up',
      options: { dir: 'D', deregister: false, prefix: 'lb', underlay: '198.51.100.0/24' },
    });
  });

  it('status --dir D, down with --deregister and --prefix anywhere', () => {
    expect(parseLabArgs(['status', '--dir', 'D'])).toEqual({
      command: 'status',
      options: { ...defaults, dir: 'D' },
    });
    expect(parseLabArgs(['--prefix', 'lt', 'status'])).toEqual({
      command: 'status',
      options: { ...defaults, prefix: 'lt' },
    });
    expect(parseLabArgs(['--deregister', 'down', '--dir', 'D'])).toEqual({
      command: 'down',
      options: { dir: 'D', deregister: true },
    });
  });

  it('unknown options, commands and arguments', () => {
    expect(usageError(['up', '--bogus'])).toBe('unknown option --bogus');
    expect(usageError(['--bogus', 'up'])).toBe('unknown option --bogus');
    expect(usageError(['status', '-x'])).toBe('unknown option -x');
    expect(usageError(['exec', '--bogus', 'web1', '--', 'ls'])).toBe('unknown option --bogus');
    expect(usageError(['exec', 'web1', '--bogus', '--', 'ls'])).toBe('unknown option --bogus');
    expect(usageError(['frobnicate'])).toBe('unknown command "frobnicate"');
    expect(usageError(['--dir', 'D'])).toMatch(/^no command/);
    expect(usageError(['up', 'extra'])).toBe('unexpected argument "extra" after up');
    expect(usageError(['status', '--', 'x'])).toBe('unexpected argument "x" after status');
  });

  it('option values and where options apply', () => {
    expect(usageError(['up', '--hosts'])).toBe('--hosts needs a value');
    expect(usageError(['up', '--dir', '--hosts', '3'])).toBe('--dir needs a value');
    expect(usageError(['up', '--hosts', 'three'])).toMatch(/--hosts must be an integer/);
    expect(usageError(['down', '--deregister=yes'])).toBe('--deregister takes no value');
    expect(usageError(['status', '--hosts', '3'])).toBe('--hosts applies to up only, not status');
    expect(usageError(['up', '--deregister'])).toBe('--deregister applies to down only, not up');
    expect(usageError(['exec', 'web1', '--underlay', '10.0.0.0/24', '--', 'ls'])).toMatch(
      /--underlay applies to up only/,
    );
  });

  it('--help and -h anywhere, the help command, and no arguments at all', () => {
    for (const argv of [
      ['--help'],
      ['-h'],
      ['up', '--help'],
      ['exec', 'web1', '-h', '--', 'ls'],
      ['--bogus', '--help'],
      ['help'],
      [],
    ]) {
      expect(parseLabArgs(argv)).toEqual({ command: 'help' });
    }
  });

  it('--version and -V anywhere', () => {
    for (const argv of [['--version'], ['-V'], ['status', '--version'], ['--version', 'down']]) {
      expect(parseLabArgs(argv)).toEqual({ command: 'version' });
    }
  });
});
