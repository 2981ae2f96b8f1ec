import { describe, expect, it } from '@jest/globals';
import { CLOSE } from '../../../libs/protocol/src/index.js';
import { RECONNECT_DEFAULTS, ReconnectPolicy } from './reconnect.js';

const DROPPED = 1006;

function policy(o: Partial<typeof RECONNECT_DEFAULTS> = {}) {
  let now = 0;
  const p = new ReconnectPolicy(
    { ...RECONNECT_DEFAULTS, ...o },
    () => now,
    () => 0.999,
  );
  return { p, advance: (ms: number) => (now += ms) };
}

describe('ReconnectPolicy', () => {
  it('backs off exponentially at start (no working session yet)', () => {
    const { p } = policy();
    const caps = [1, 2, 3, 4, 5, 6, 7, 8].map(() => Math.round(p.next(DROPPED).delayMs / 0.999));
    expect(caps).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });

  it('retries fast for the window after a working session, then backs off', () => {
    const { p, advance } = policy();
    p.worked();
    const first = p.next(CLOSE.GOING_AWAY);
    expect(first).toEqual({ delayMs: 999, fast: true });
    // the controller stays away: fast attempts until the window closes
    let t = 0;
    while (t < 29_000) {
      advance(1000);
      t += 1000;
      expect(p.next(DROPPED).fast).toBe(true);
    }
    advance(1001);
    const after = [1, 2, 3].map(() => p.next(DROPPED));
    expect(after.map((a) => a.fast)).toEqual([false, false, false]);
    expect(after.map((a) => Math.round(a.delayMs / 0.999))).toEqual([500, 1000, 2000]);
  });

  it('never retries fast after a refusal, and a refusal closes the window', () => {
    for (const code of [CLOSE.POLICY, CLOSE.VERSION, CLOSE.REPLACED]) {
      const { p } = policy();
      p.worked();
      expect(p.next(code).fast).toBe(false);
      expect(p.next(DROPPED).fast).toBe(false);
    }
    const { p } = policy();
    p.worked();
    expect(p.next(DROPPED).fast).toBe(true);
    expect(p.next(CLOSE.POLICY).fast).toBe(false);
    expect(p.next(DROPPED).fast).toBe(false);
  });

  it('is configurable: the fast cap, and a window of 0 turns it off', () => {
    const a = policy({ fastRetryMaxMs: 200 });
    a.p.worked();
    expect(a.p.next(DROPPED).delayMs).toBeCloseTo(199.8);
    const b = policy({ fastRetryWindowMs: 0 });
    b.p.worked();
    expect(b.p.next(DROPPED)).toEqual({ delayMs: 499.5, fast: false });
    // never slower than the backoff cap
    const c = policy({ backoffMinMs: 10, backoffMaxMs: 100 });
    c.p.worked();
    expect(c.p.next(DROPPED).delayMs).toBeCloseTo(99.9);
  });
});
