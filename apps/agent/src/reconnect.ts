import { CLOSE } from '../../../libs/protocol/src/index.js';

export interface ReconnectOptions {
  /** Exponential backoff: first delay and cap (full jitter in between). */
  backoffMinMs: number;
  backoffMaxMs: number;
  /** After a working session ends: retry within this (uniform jitter)... */
  fastRetryMaxMs: number;
  /** ...for this long after it ended, then fall back to the exponential backoff. 0: never. */
  fastRetryWindowMs: number;
}

export const RECONNECT_DEFAULTS: ReconnectOptions = {
  backoffMinMs: 500,
  backoffMaxMs: 30_000,
  fastRetryMaxMs: 1000,
  fastRetryWindowMs: 30_000,
};

/**
 * Close codes that mean "this agent is not wanted here as it is": a bad token (1008), an
 * unsupported version (4004), another live agent for the host (4001), a frame too big
 * (1009), no hello in time (4002, e.g. an overloaded controller). Retrying those quickly
 * helps nobody: they always get the exponential backoff.
 */
const REFUSALS: ReadonlySet<number> = new Set([
  CLOSE.POLICY,
  CLOSE.VERSION,
  CLOSE.REPLACED,
  CLOSE.TOO_BIG,
  CLOSE.HELLO_TIMEOUT,
]);

/**
 * When to try connecting again.
 *
 * - A session that worked (the controller sent it a snapshot or diff) and then closed for
 *   any reason but a refusal (the controller restarting with 1001 GOING_AWAY, a dropped
 *   socket, 4003, the agent's own resync) opens a fast window: for `fastRetryWindowMs`
 *   after that close, every attempt waits a uniform random `[0, fastRetryMaxMs)` (capped
 *   by `backoffMaxMs`). A restarted controller thus sees each agent again within about
 *   `fastRetryMaxMs` of listening, and 1,000 agents make about 1,000 attempts per second
 *   meanwhile, spread evenly rather than in waves.
 * - Otherwise (at start, after the window, after a refusal) exponential backoff with full
 *   jitter: attempt n waits uniform `[0, min(backoffMaxMs, backoffMinMs * 2^n))`, n counted
 *   from the last working session. A refusal also closes the fast window.
 */
export class ReconnectPolicy {
  private attempt = 0;
  private fastUntil = 0;
  private sessionWorked = false;

  constructor(
    private readonly o: ReconnectOptions,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** The current session resynced: the controller is working. */
  worked(): void {
    this.attempt = 0;
    this.sessionWorked = true;
  }

  /** The connection (or attempt) closed with `code`: how long to wait, and in which mode. */
  next(code: number): { delayMs: number; fast: boolean } {
    const now = this.now();
    if (REFUSALS.has(code)) {
      this.fastUntil = 0;
    } else if (this.sessionWorked && this.o.fastRetryWindowMs > 0) {
      this.fastUntil = now + this.o.fastRetryWindowMs;
    }
    this.sessionWorked = false;
    if (now < this.fastUntil)
      return {
        delayMs: this.random() * Math.min(this.o.fastRetryMaxMs, this.o.backoffMaxMs),
        fast: true,
      };
    const cap = Math.min(this.o.backoffMaxMs, this.o.backoffMinMs * 2 ** this.attempt);
    if (cap < this.o.backoffMaxMs) this.attempt++;
    return { delayMs: this.random() * cap, fast: false };
  }
}
