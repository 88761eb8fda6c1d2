// @vitest-environment node
// The pacer in the cases Stryker's first full run showed untested
// (docs/testing.md, "Web package"): a larger stated bucket does not hand back
// spent tokens, waiting costs one timer and not a poll, and a stopped pacer
// holds nothing and leaves no timer.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Clock } from "../src/clock.js";
import { Pacer } from "../src/pacer.js";

describe("pacer (mutants)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("keeps spent tokens spent when the server states a larger bucket", () => {
    const p = new Pacer({ rate: 10, burst: 5 }); // capacity 3
    const sent: number[] = [];
    for (let i = 0; i < 3; i++) p.submit(() => sent.push(i), "publish");
    expect(sent).toEqual([0, 1, 2]);
    // Authenticated states burst 40: the server's bucket is as empty as ours.
    p.setLimits(10, 40);
    p.submit(() => sent.push(3), "publish");
    expect(sent).toEqual([0, 1, 2]);
    expect(p.queued).toBe(1);
  });

  it("waits for the next token with one timer, not by polling", async () => {
    let armed = 0;
    const clock: Clock = {
      now: () => Date.now(),
      setTimeout: (fn, ms) => {
        armed++;
        return setTimeout(fn, ms);
      },
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    const p = new Pacer({ rate: 10, burst: 3, clock }); // capacity 1, a token every 111 ms
    const sent: number[] = [];
    p.submit(() => sent.push(0), "publish");
    p.submit(() => sent.push(1), "publish");
    await vi.advanceTimersByTimeAsync(120);
    expect(sent).toEqual([0, 1]);
    expect(armed).toBe(1);
  });

  it("holds nothing submitted after stop(), and leaves no timer behind", () => {
    const p = new Pacer({ rate: 10, burst: 3 }); // capacity 1
    p.submit(() => {}, "publish");
    p.submit(() => {}, "publish"); // waits: a timer is armed
    expect(vi.getTimerCount()).toBe(1);
    p.stop();
    expect(vi.getTimerCount()).toBe(0);
    p.submit(() => {}, "control");
    expect(p.queued).toBe(0);
  });

  it("says which limits it needs", () => {
    expect(() => new Pacer({ rate: 0, burst: 4 })).toThrow(/rate > 0 and burst >= 1/);
  });
});
