// @vitest-environment node
import { describe, expect, it } from "vitest";
import { Backoff } from "../src/backoff.js";

describe("backoff", () => {
  it("retries the first time at once, then grows exponentially up to the cap", () => {
    // random() just below 1 gives the ceiling of each step (minus rounding).
    const b = new Backoff({ baseMs: 500, maxMs: 30_000, random: () => 0.999999 });
    const delays = Array.from({ length: 10 }, () => b.next());
    expect(delays).toEqual([0, 499, 999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
  });

  it("draws each delay uniformly below its ceiling (full jitter)", () => {
    const draws = [0, 0.5, 0.25, 0.75];
    let i = 0;
    const b = new Backoff({ baseMs: 1000, maxMs: 60_000, random: () => draws[i++ % draws.length] as number });
    expect(b.next()).toBe(0); // immediate, does not consume a draw
    expect(b.next()).toBe(0); // 0 * 1000
    expect(b.next()).toBe(1000); // 0.5 * 2000
    expect(b.next()).toBe(1000); // 0.25 * 4000
    expect(b.next()).toBe(6000); // 0.75 * 8000
  });

  it("never exceeds the cap, however many attempts, with real randomness", () => {
    const b = new Backoff({ baseMs: 250, maxMs: 5000 });
    const spread = new Set<number>();
    for (let n = 0; n < 2000; n++) {
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(5000);
      if (n > 10) spread.add(Math.floor(d / 1000));
    }
    // Jitter spreads the capped delays over the whole range.
    expect(spread.size).toBeGreaterThanOrEqual(4);
    expect(b.ceiling(1)).toBe(250);
    expect(b.ceiling(1000)).toBe(5000);
  });

  it("starts over with an immediate retry after reset", () => {
    const b = new Backoff({ random: () => 0.5 });
    b.next();
    b.next();
    b.next();
    expect(b.attempts).toBe(3);
    b.reset();
    expect(b.next()).toBe(0);
    expect(b.next()).toBe(250);
  });

  it("rejects nonsense options, and takes the edge cases that make sense", () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ factor: 0.5 })).toThrow("backoff: baseMs > 0, factor >= 1 and maxMs >= 0 are required");
    expect(() => new Backoff({ maxMs: -1 })).toThrow(RangeError);
    // factor 1: a constant ceiling; maxMs 0: always at once.
    const flat = new Backoff({ baseMs: 100, factor: 1, random: () => 0.999 });
    expect([flat.next(), flat.next(), flat.next(), flat.next()]).toEqual([0, 99, 99, 99]);
    const eager = new Backoff({ maxMs: 0, random: () => 0.999 });
    expect([eager.next(), eager.next(), eager.next()]).toEqual([0, 0, 0]);
  });
});
