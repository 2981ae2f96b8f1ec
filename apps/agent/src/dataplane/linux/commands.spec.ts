/**
 * Command timeouts and output caps, with real processes: a hung command is killed and
 * fails fast with a clear error, and in the linux data plane that error lands on the
 * resources being applied (a fake `ip` that hangs, first on PATH), never as a crash.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diff } from '../../../../../libs/engine/src/diff.js';
import { resource, type Resource } from '../../../../../libs/engine/src/resources.js';
import { createRunner, KILLED_CODE, MAX_COMMAND_OUTPUT_BYTES, spawnRunner } from './commands.js';
import { LinuxDataplane } from './linux-dataplane.js';

/** Processes whose command line contains `marker` (read from /proc). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmd.includes(marker)) pids.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('createRunner', () => {
  it('runs a command with stdin, and reports its exit code, stdout and stderr', async () => {
    const run = createRunner({ timeoutMs: 5000, maxOutputBytes: 1024 });
    const r = await run(['sh', '-c', 'cat; echo oops >&2; exit 3'], 'hello\n');
    expect(r).toEqual({ code: 3, stdout: 'hello\n', stderr: 'oops\n' });
    expect((await run(['no-such-binary-lattice'])).code).toBe(127);
  });

  it('kills a command past its timeout and fails fast with a clear error', async () => {
    const run = createRunner({ timeoutMs: 200 });
    const marker = '5.0173'; // a unique `sleep` duration, to find the process afterwards
    const t0 = Date.now();
    const r = await run(['sleep', marker]);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(2000);
    expect(r.code).toBe(KILLED_CODE);
    expect(r.killed).toBe(`sleep ${marker}: timed out after 200 ms (killed)`);
    expect(r.stderr).toBe(r.killed);
    expect(r.stdout).toBe('');
    await sleep(100);
    expect(processesWith(`sleep ${marker}`)).toEqual([]);
  });

  it('does not wait for a grandchild that keeps the pipes open', async () => {
    const run = createRunner({ timeoutMs: 200 });
    const t0 = Date.now();
    // The shell's background sleep inherits stdout: "close" would only come after 3 s.
    const r = await run(['sh', '-c', 'sleep 3.0291 & exec sleep 3.0292']);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(r.killed).toMatch(/timed out after 200 ms/);
    for (const pid of processesWith('sleep 3.0291')) process.kill(pid);
  });

  it('kills a command that prints more than the cap', async () => {
    const run = createRunner({ timeoutMs: 10_000, maxOutputBytes: 1024 * 1024 });
    const t0 = Date.now();
    const r = await run(['yes', 'lattice']); // never ends by itself
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.code).toBe(KILLED_CODE);
    expect(r.killed).toBe(`yes lattice: printed more than ${1024 * 1024} bytes (killed)`);
    expect(r.stdout).toBe('');
    // stderr counts too
    const e = await run(['sh', '-c', 'head -c 2000000 /dev/zero >&2']);
    expect(e.killed).toMatch(/printed more than/);
    // under the cap: the whole output
    const ok = await run(['head', '-c', '1000000', '/dev/zero']);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toHaveLength(1_000_000);
  });

  it('has no limits unless given (the lab runner)', async () => {
    const r = await spawnRunner(['sh', '-c', 'sleep 0.3; echo done']);
    expect(r).toEqual({ code: 0, stdout: 'done\n', stderr: '' });
  });
});

describe('LinuxDataplane with a hung ip', () => {
  let dir: string;

  const bridge = resource('bridge', {
    name: 'ltbr-hung',
    network: 'net1',
    mtu: 1500,
    mac: '0e:00:00:00:00:07',
  });
  const route = resource('route', {
    dst: '10.77.0.0/24',
    via: '192.0.2.7',
    dev: null,
    onlink: false,
  });
  const state = (rs: Resource[]) => new Map(rs.map((r) => [r.key, r]));

  /** Puts an `ip` (and `bridge`) first on PATH that runs `body` (a sh script). */
  function fakeIp(body: string) {
    for (const bin of ['ip', 'bridge']) {
      const f = join(dir, bin);
      writeFileSync(f, `#!/bin/sh\n${body}\n`);
      chmodSync(f, 0o755);
    }
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'lattice-cmd-'));
  });
  afterAll(() => {
    for (const pid of processesWith('sleep 30.0417')) process.kill(pid);
    rmSync(dir, { recursive: true, force: true });
  });

  // As with --command-timeout-ms 300; the fake binaries come first on PATH (the child's
  // environment: Jest's process.env is a copy the real spawn never sees).
  const dataplane = () =>
    new LinuxDataplane({
      instanceNetnsPrefix: 'lt',
      uplink: 'eth0',
      stateDir: dir,
      run: createRunner({
        timeoutMs: 300,
        maxOutputBytes: MAX_COMMAND_OUTPUT_BYTES,
        env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` },
      }),
    });

  it('reports a hung batch as errors of the resources it was applying', async () => {
    // Reads answer at once (nothing exists); any `-batch` hangs.
    fakeIp('case "$*" in *-batch*) exec sleep 30.0417 ;; *) echo "[]" ;; esac');
    const t0 = Date.now();
    const errors = await dataplane().apply(diff(new Map(), state([bridge, route])));
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(errors.map((e) => e.key).sort()).toEqual([bridge.key, route.key].sort());
    for (const e of errors)
      expect(e.message).toMatch(/-batch -: timed out after 300 ms \(killed\)/);
  });

  it('reports a hung read of the kernel as errors of every resource, for apply and sync', async () => {
    fakeIp('exec sleep 30.0417');
    const dp = dataplane();
    const t0 = Date.now();
    const errors = await dp.apply(diff(new Map(), state([bridge, route])));
    expect(errors.map((e) => e.key).sort()).toEqual([bridge.key, route.key].sort());
    expect(errors[0].message).toMatch(/^ip -j link show: timed out after 300 ms \(killed\)/);
    const synced = await dp.sync([bridge, route]);
    expect(synced.map((e) => e.key).sort()).toEqual([bridge.key, route.key].sort());
    expect(synced[0].message).toMatch(/timed out after 300 ms/);
    expect(Date.now() - t0).toBeLessThan(5000);
    // and the data plane still works once ip answers again
    fakeIp('case "$*" in *-batch*) cat >/dev/null ;; *) echo "[]" ;; esac');
    expect(await dp.apply(diff(new Map(), state([bridge, route])))).toEqual([]);
  });
});
