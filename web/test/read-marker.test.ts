// read-marker: messages seen become few MarkRead calls, newest first, never backwards.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MARK_READ_DEBOUNCE_MS } from "../src/constants.js";
import { ReadMarker } from "../src/read-marker.js";

describe("ReadMarker", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("saves the newest message seen once the reader rested, in one call", async () => {
    const saved: Array<[bigint, bigint]> = [];
    const r = new ReadMarker(async (seq, rev) => void saved.push([seq, rev]));
    r.seen(3n, 30n);
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS - 1);
    r.seen(5n, 50n);
    r.seen(4n, 40n); // older than one already seen: ignored
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS - 1);
    expect(saved).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(saved).toEqual([[5n, 50n]]);
    expect(r.readSeq).toBe(5n);
  });

  it("never saves what is already read (the server's word or an earlier save)", async () => {
    const saved: bigint[] = [];
    const r = new ReadMarker(async (seq) => void saved.push(seq));
    r.known(10n);
    r.known(7n); // older: keeps 10
    expect(r.readSeq).toBe(10n);
    r.seen(10n, 1n);
    r.seen(9n, 1n);
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS * 2);
    expect(saved).toEqual([]);
    r.seen(11n, 1n);
    await r.flush();
    r.seen(11n, 1n);
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS * 2);
    expect(saved).toEqual([11n]);
  });

  it("a failed save is tried again at the next sight", async () => {
    const saved: bigint[] = [];
    let fail = true;
    const r = new ReadMarker(async (seq) => {
      if (fail) throw new Error("offline");
      saved.push(seq);
    });
    r.seen(2n, 2n);
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS);
    expect(r.readSeq).toBe(0n);
    fail = false;
    r.seen(2n, 2n);
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS);
    expect(saved).toEqual([2n]);
  });

  it("stop() drops what was waiting", async () => {
    const saved: bigint[] = [];
    const r = new ReadMarker(async (seq) => void saved.push(seq));
    r.seen(2n, 2n);
    r.stop();
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS * 2);
    await r.flush();
    expect(saved).toEqual([]);
  });

  it("seeing the same message again does not postpone its save", async () => {
    const saved: bigint[] = [];
    const r = new ReadMarker(async (seq) => void saved.push(seq));
    r.seen(5n, 5n);
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS - 100);
    r.seen(5n, 5n);
    await vi.advanceTimersByTimeAsync(100);
    expect(saved).toEqual([5n]);
  });

  it("never moves the read point back: not for a save overtaken by the server's word, nor when that save fails", async () => {
    const saved: bigint[] = [];
    const r = new ReadMarker(async (seq) => void saved.push(seq));
    r.seen(11n, 11n);
    r.known(12n); // another tab read further meanwhile
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS);
    expect(saved).toEqual([]);
    expect(r.readSeq).toBe(12n);

    let fail!: (e: Error) => void;
    const slow = new ReadMarker(() => new Promise((_, reject) => (fail = reject)));
    slow.seen(3n, 3n);
    const flushing = slow.flush();
    slow.known(20n);
    fail(new Error("offline"));
    await flushing;
    expect(slow.readSeq).toBe(20n);
  });
});
