// @vitest-environment node
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PACING_BURST_MARGIN, PACING_RATE_FACTOR } from "../src/constants.js";
import { Pacer } from "../src/pacer.js";

describe("pacer", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("lets a bucket's worth through at once (minus the margin), then one per refill", async () => {
    const p = new Pacer({ rate: 10, burst: 5 });
    const sent: number[] = [];
    for (let i = 0; i < 6; i++) p.submit(() => sent.push(i), "publish");
    expect(sent).toEqual([0, 1, 2]); // 5 - margin 2
    expect(p.queued).toBe(3);
    // One token every 1 / (10 × 0.9) s = 111.1 ms.
    const step = Math.ceil(1000 / (10 * PACING_RATE_FACTOR));
    await vi.advanceTimersByTimeAsync(step - 2);
    expect(sent).toEqual([0, 1, 2]);
    await vi.advanceTimersByTimeAsync(2);
    expect(sent).toEqual([0, 1, 2, 3]);
    await vi.advanceTimersByTimeAsync(2 * step);
    expect(sent).toEqual([0, 1, 2, 3, 4, 5]);
    expect(p.queued).toBe(0);
    expect(PACING_BURST_MARGIN).toBe(2);
  });

  it("refills while idle, but never above its capacity", async () => {
    const p = new Pacer({ rate: 10, burst: 5 });
    const sent: string[] = [];
    for (let i = 0; i < 3; i++) p.submit(() => sent.push(`a${i}`), "publish");
    await vi.advanceTimersByTimeAsync(60_000);
    for (let i = 0; i < 4; i++) p.submit(() => sent.push(`b${i}`), "publish");
    expect(sent).toEqual(["a0", "a1", "a2", "b0", "b1", "b2"]);
    expect(p.queued).toBe(1);
  });

  it("sends control frames before queued publishes", async () => {
    const p = new Pacer({ rate: 10, burst: 3 }); // capacity 1
    const sent: string[] = [];
    p.submit(() => sent.push("pub1"), "publish");
    p.submit(() => sent.push("pub2"), "publish");
    p.submit(() => sent.push("pub3"), "publish");
    p.submit(() => sent.push("ping"), "control");
    expect(sent).toEqual(["pub1"]);
    await vi.advanceTimersByTimeAsync(120);
    expect(sent).toEqual(["pub1", "ping"]);
    await vi.advanceTimersByTimeAsync(240);
    expect(sent).toEqual(["pub1", "ping", "pub2", "pub3"]);
  });

  it("adopts stated limits without handing back tokens already spent", async () => {
    const p = new Pacer({ rate: 20, burst: 40 });
    const sent: number[] = [];
    for (let i = 0; i < 3; i++) p.submit(() => sent.push(i), "publish");
    expect(sent).toEqual([0, 1, 2]);
    p.setLimits(1, 4); // capacity 2, already more than spent
    p.submit(() => sent.push(3), "publish");
    p.submit(() => sent.push(4), "publish");
    p.submit(() => sent.push(5), "publish");
    expect(sent).toEqual([0, 1, 2, 3, 4]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent).toEqual([0, 1, 2, 3, 4]);
    await vi.advanceTimersByTimeAsync(200);
    expect(sent).toEqual([0, 1, 2, 3, 4, 5]);
    expect(() => p.setLimits(0, 4)).toThrow(RangeError);
    expect(() => p.setLimits(1, 0.5)).toThrow(RangeError);
    expect(() => new Pacer({ rate: -1, burst: 4 })).toThrow(RangeError);
  });

  it("keeps at least one token of capacity however small the burst", () => {
    const p = new Pacer({ rate: 1, burst: 1 });
    const sent: number[] = [];
    p.submit(() => sent.push(1), "control");
    p.submit(() => sent.push(2), "control");
    expect(sent).toEqual([1]);
  });

  it("drops everything waiting when stopped, and takes nothing after", async () => {
    const p = new Pacer({ rate: 10, burst: 3 });
    const sent: number[] = [];
    for (let i = 0; i < 3; i++) p.submit(() => sent.push(i), "publish");
    p.stop();
    expect(p.queued).toBe(0);
    p.submit(() => sent.push(9), "control");
    await vi.advanceTimersByTimeAsync(5000);
    expect(sent).toEqual([0]);
  });

  it("stops draining when a frame it sends stops it (the connection closed under it)", async () => {
    const p = new Pacer({ rate: 10, burst: 5 }); // capacity 3
    const sent: string[] = [];
    for (let i = 0; i < 3; i++) p.submit(() => sent.push(`n${i}`), "publish");
    p.submit(() => {
      sent.push("closing");
      p.stop();
    }, "publish");
    p.submit(() => sent.push("after"), "publish");
    expect(sent).toEqual(["n0", "n1", "n2"]);
    // Time passes (the tab slept): the bucket is full again when the timer runs.
    vi.setSystemTime(Date.now() + 5000);
    await vi.advanceTimersByTimeAsync(200);
    expect(sent).toEqual(["n0", "n1", "n2", "closing"]);
  });
});
