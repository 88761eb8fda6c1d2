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
});
