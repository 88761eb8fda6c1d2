// @vitest-environment node
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Heartbeat } from "../src/heartbeat.js";

describe("heartbeat", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function setup() {
    const pings: bigint[] = [];
    const onTimeout = vi.fn();
    const hb = new Heartbeat({ sendPing: (n) => pings.push(n), onTimeout, intervalMs: 5000, timeoutMs: 5000 });
    return { hb, pings, onTimeout };
  }

  it("pings at once and then every interval while pongs come back", () => {
    const { hb, pings, onTimeout } = setup();
    hb.start();
    expect(pings).toEqual([1n]);
    for (let i = 0; i < 10; i++) {
      hb.pong(pings[pings.length - 1] as bigint);
      vi.advanceTimersByTime(5000);
    }
    expect(pings.length).toBe(11);
    expect(onTimeout).not.toHaveBeenCalled();
    hb.stop();
  });

  it("declares the link broken when a pong is 5 s late", () => {
    const { hb, pings, onTimeout } = setup();
    hb.start();
    hb.pong(1n);
    vi.advanceTimersByTime(5000); // ping 2 goes out, never answered
    expect(pings).toEqual([1n, 2n]);
    vi.advanceTimersByTime(4999);
    expect(onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onTimeout).toHaveBeenCalledTimes(1);
    expect(hb.isRunning).toBe(false);
    vi.advanceTimersByTime(60_000); // stopped: no more pings, no second call
    expect(pings.length).toBe(2);
    expect(onTimeout).toHaveBeenCalledTimes(1);
  });

  it("notices a link that went silent within interval + timeout", () => {
    for (const silentAt of [1, 2500, 4999, 5000, 7000]) {
      const { hb, pings, onTimeout } = setup();
      hb.start();
      let t = 0;
      let answering = true;
      let detected = -1;
      onTimeout.mockImplementation(() => {
        detected = t;
      });
      while (t < 30_000 && detected < 0) {
        if (t >= silentAt) answering = false;
        if (answering) hb.pong(pings[pings.length - 1] as bigint);
        vi.advanceTimersByTime(100);
        t += 100;
      }
      expect(detected).toBeGreaterThan(0);
      expect(detected - silentAt).toBeLessThanOrEqual(10_000);
      hb.stop();
    }
  });

  it("does not time out while other frames keep arriving (pong queued behind a replay)", () => {
    const { hb, onTimeout } = setup();
    hb.start();
    for (let i = 0; i < 80; i++) {
      vi.advanceTimersByTime(250);
      hb.heard();
    }
    expect(onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(5000);
    expect(onTimeout).toHaveBeenCalledTimes(1);
  });

  it("accepts an answer to an older ping", () => {
    const { hb, onTimeout } = setup();
    hb.start();
    vi.advanceTimersByTime(4000);
    hb.pong(1n);
    vi.advanceTimersByTime(1000); // ping 2
    vi.advanceTimersByTime(4000);
    hb.pong(2n);
    vi.advanceTimersByTime(3000);
    expect(onTimeout).not.toHaveBeenCalled();
    hb.stop();
  });

  it("uses 5 s for both the interval and the timeout by default", () => {
    const pings: bigint[] = [];
    const onTimeout = vi.fn();
    const hb = new Heartbeat({ sendPing: (n) => pings.push(n), onTimeout });
    expect([hb.intervalMs, hb.timeoutMs]).toEqual([5000, 5000]);
    hb.start();
    vi.advanceTimersByTime(4999);
    expect(onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onTimeout).toHaveBeenCalledTimes(1); // ping 1 went unanswered for 5 s
    const answered: bigint[] = [];
    const hb2 = new Heartbeat({ sendPing: (n) => answered.push(n), onTimeout: vi.fn() });
    hb2.start();
    hb2.pong(1n);
    vi.advanceTimersByTime(4999);
    expect(answered).toEqual([1n]);
    vi.advanceTimersByTime(1);
    expect(answered).toEqual([1n, 2n]);
    hb2.stop();
  });

  it("starts once: a second start() sends no extra ping", () => {
    const { hb, pings } = setup();
    hb.start();
    hb.start();
    expect(pings).toEqual([1n]);
    expect(hb.isRunning).toBe(true);
    hb.pong(1n);
    vi.advanceTimersByTime(5000);
    expect(pings).toEqual([1n, 2n]);
    hb.stop();
  });

  it("leaves no timer behind when stopped, with or without a ping unanswered", () => {
    const { hb, onTimeout } = setup();
    hb.start();
    expect(vi.getTimerCount()).toBe(2); // next ping, deadline
    hb.stop();
    expect(vi.getTimerCount()).toBe(0);
    expect(hb.isRunning).toBe(false);
    hb.start();
    hb.pong(2n); // nonces go on counting across restarts
    expect(vi.getTimerCount()).toBe(1); // only the next ping
    hb.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(onTimeout).not.toHaveBeenCalled();
  });

  it("stops cleanly when sending a ping stops it", () => {
    const onTimeout = vi.fn();
    const hb: Heartbeat = new Heartbeat({ sendPing: () => hb.stop(), onTimeout, intervalMs: 1000, timeoutMs: 1000 });
    hb.start();
    expect(hb.isRunning).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("keeps a quiet but healthy link between pings: a pong ends the deadline", () => {
    // Pings every 20 s, 2 s to answer: nothing else crosses the link.
    const pings: bigint[] = [];
    const onTimeout = vi.fn();
    const hb = new Heartbeat({ sendPing: (n) => pings.push(n), onTimeout, intervalMs: 20_000, timeoutMs: 2000 });
    hb.start();
    vi.advanceTimersByTime(1900);
    hb.pong(1n);
    vi.advanceTimersByTime(18_000); // silent for 18 s, but nothing is owed
    expect(onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(100); // ping 2 at 20 s
    expect(pings).toEqual([1n, 2n]);
    vi.advanceTimersByTime(1999);
    expect(onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onTimeout).toHaveBeenCalledTimes(1);
  });

  it("ignores a pong older than the ping it waits for, and counts from the oldest unanswered ping", () => {
    // Pings every second, 5 s to answer.
    const pings: bigint[] = [];
    const onTimeout = vi.fn();
    const hb = new Heartbeat({ sendPing: (n) => pings.push(n), onTimeout, intervalMs: 1000, timeoutMs: 5000 });
    hb.start();
    hb.pong(1n); // answered at once: nothing owed
    vi.advanceTimersByTime(1000); // ping 2 (owed from t = 1 s)
    vi.advanceTimersByTime(2000); // pings 3, 4
    hb.pong(1n); // a late duplicate of an old answer changes nothing owed
    vi.advanceTimersByTime(2999); // t = 5.999 s: silent since the duplicate at 3 s only 2.999 s
    expect(onTimeout).not.toHaveBeenCalled();
    // Ping 2 is owed since 1 s and the link was heard at 3 s: dead at 8 s.
    vi.advanceTimersByTime(2000);
    expect(onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(onTimeout).toHaveBeenCalledTimes(1);
  });

  it("an answer to an older ping pays what is owed since that ping", () => {
    const pings: bigint[] = [];
    const onTimeout = vi.fn();
    const hb = new Heartbeat({ sendPing: (n) => pings.push(n), onTimeout, intervalMs: 1000, timeoutMs: 5000 });
    hb.start(); // ping 1 owed from 0
    vi.advanceTimersByTime(3500); // pings 2, 3, 4
    hb.pong(1n); // the answer to ping 1: nothing owed now
    vi.advanceTimersByTime(500); // ping 5 at 4 s: owed from 4 s
    vi.advanceTimersByTime(4999); // 8.999 s
    expect(onTimeout).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1); // 9 s: ping 5 unanswered for 5 s
    expect(onTimeout).toHaveBeenCalledTimes(1);
  });
});
