/**
 * Running commands, and attributing batch failures to lines.
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /**
   * Set when the runner killed the command (it ran past its timeout, or printed more than
   * its output cap): why, e.g. `ip -j link show: timed out after 10000 ms (killed)`. Then
   * `code` is 137 (killed, as a shell reports it), `stderr` is this text and `stdout` empty.
   */
  readonly killed?: string;
}

/**
 * Runs `argv` (no shell) with `input` on stdin. Never rejects for a non-zero exit: the
 * caller reads `code`. A missing binary is reported as code 127, like a shell would.
 */
export type CommandRunner = (argv: readonly string[], input?: string) => Promise<CommandResult>;

export interface CommandLimits {
  /** Kill the command after this long; 0: no limit. */
  readonly timeoutMs: number;
  /** Kill the command once stdout and stderr together exceed this many bytes; 0: no limit. */
  readonly maxOutputBytes: number;
}

/** `--command-timeout-ms` default: no iproute2, nft or birdc call takes seconds when healthy. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;
/** Output cap: the largest dumps (`ip -j -d link show` of a big host) are a few MiB. */
export const MAX_COMMAND_OUTPUT_BYTES = 16 * 1024 * 1024;
/** Exit code reported for a command the runner killed (128 + SIGKILL). */
export const KILLED_CODE = 137;

/**
 * A runner that kills (SIGKILL) a command past `timeoutMs` or past `maxOutputBytes` of
 * output and resolves at once with `killed` set: it does not wait for the child to go away
 * (a process stuck in the kernel may never), so a hung `ip` cannot freeze the caller.
 */
export function createRunner(
  limits: Partial<CommandLimits> & { readonly env?: NodeJS.ProcessEnv } = {},
): CommandRunner {
  const timeoutMs = limits.timeoutMs ?? 0;
  const maxOutputBytes = limits.maxOutputBytes ?? 0;
  return (argv, input) =>
    new Promise((resolve) => {
      const child = spawn(argv[0], argv.slice(1), {
        stdio: ['pipe', 'pipe', 'pipe'],
        ...(limits.env ? { env: limits.env } : {}),
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let bytes = 0;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (r: CommandResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const kill = (why: string) => {
        if (settled) return;
        const killed = `${argv.join(' ')}: ${why} (killed)`;
        child.kill('SIGKILL');
        // Whatever still holds the pipes (a grandchild) must not keep us waiting.
        child.stdin.destroy();
        child.stdout.destroy();
        child.stderr.destroy();
        settle({ code: KILLED_CODE, stdout: '', stderr: killed, killed });
      };
      const collect = (into: Buffer[]) => (b: Buffer) => {
        if (settled) return;
        bytes += b.length;
        if (maxOutputBytes > 0 && bytes > maxOutputBytes) {
          out.length = err.length = 0;
          kill(`printed more than ${maxOutputBytes} bytes`);
          return;
        }
        into.push(b);
      };
      child.stdout.on('data', collect(out));
      child.stderr.on('data', collect(err));
      if (timeoutMs > 0)
        timer = setTimeout(() => kill(`timed out after ${timeoutMs} ms`), timeoutMs);
      child.on('error', (e: NodeJS.ErrnoException) =>
        settle({ code: e.code === 'ENOENT' ? 127 : 1, stdout: '', stderr: e.message }),
      );
      child.on('close', (code, signal) =>
        settle({
          code: code ?? (signal ? 128 : 1),
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        }),
      );
      // A child that exits before reading stdin must not crash us with EPIPE.
      child.stdin.on('error', () => undefined);
      child.stdin.end(input ?? '');
    });
}

/** Without limits: the lab and tests, whose commands (`lab exec`, pings) may run long. */
export const spawnRunner: CommandRunner = createRunner();

/** Outcome of one `-force -batch`: errors by 0-based line, and whether it stopped early. */
export interface BatchOutcome {
  readonly failed: ReadonlyMap<number, string>;
  /** Error text not followed by `Command failed`: the tool exited in the middle. */
  readonly aborted: string | null;
}

/**
 * Parses the stderr of `ip|bridge -force -batch -`. Each failing line prints its error
 * then `Command failed -:<line>`. Some argument errors (an unknown `master` device, a bad
 * address) make iproute2 exit at once even with `-force`: that leaves trailing text with
 * no `Command failed`, and no way to know which lines ran.
 */
export function parseBatchErrors(stderr: string, code: number): BatchOutcome {
  const failed = new Map<number, string>();
  let pending: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^Command failed (?:-|\S+):(\d+)$/.exec(line);
    if (m) {
      failed.set(Number(m[1]) - 1, pending.join(' ') || 'failed');
      pending = [];
    } else {
      pending.push(line);
    }
  }
  let aborted: string | null = null;
  if (code !== 0 && pending.length > 0) aborted = pending.join(' ');
  else if (code !== 0 && failed.size === 0) aborted = `exit code ${code}`;
  return { failed, aborted };
}

/** Splits the output of `ip -j -batch -` (one JSON document per command, per line). */
export function parseJsonLines(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as unknown);
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
