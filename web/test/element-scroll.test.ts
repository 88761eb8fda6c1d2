// Reading back through history: "Load earlier" and scrolling to the top keep
// the reader's place; the rendered list stays bounded while following the
// end, and scroll-back still reaches every older message.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeGateway } from "./fakes.js";
import { fakeLayout, mount } from "./mount.js";

const ROW = 20;

describe("<parley-chat> scroll-back", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("'Load earlier messages' keeps the reader's place instead of jumping to the end", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 20; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw, { before: (el) => el.setAttribute("history-limit", "5") });
    fakeLayout(m.log(), ROW);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.items().map((li) => li.dataset.seq)).toEqual(["16", "17", "18", "19", "20"]);
    // The reader looks at the top of what is shown (seq 16 at y = 0)...
    const top = m.items()[0] as HTMLElement;
    m.log().scrollTop = 0;
    const before = m.log().scrollHeight - m.log().scrollTop;
    m.older().click();
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items().map((li) => li.dataset.seq).slice(0, 6)).toEqual(["11", "12", "13", "14", "15", "16"]);
    // ...and still does: the content above grew, the distance to the end did not change.
    expect(m.log().scrollHeight - m.log().scrollTop).toBe(before);
    expect(m.log().scrollTop).toBeGreaterThan(0);
    expect(m.log().scrollTop).toBeLessThan(m.log().scrollHeight - m.log().clientHeight);
    expect(top.isConnected).toBe(true);
  });

  it("loads older pages by itself when the reader scrolls to the top", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 12; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw, { before: (el) => el.setAttribute("history-limit", "4") });
    fakeLayout(m.log(), ROW);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.items()).toHaveLength(4);
    m.log().scrollTop = 0;
    m.log().dispatchEvent(new Event("scroll"));
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items()).toHaveLength(8);
    // In the middle: nothing more is loaded.
    m.log().scrollTop = 60;
    m.log().dispatchEvent(new Event("scroll"));
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items()).toHaveLength(8);
    m.log().scrollTop = 0;
    m.log().dispatchEvent(new Event("scroll"));
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items().map((li) => li.dataset.seq)).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
    expect(m.older().hidden).toBe(true);
  });

  it("keeps at most maxRendered rows while following the end, and scroll-back brings the rest back", async () => {
    const gw = new FakeGateway();
    const m = mount(gw, {
      before: (el) => {
        el.maxRendered = 5;
        el.setAttribute("history-limit", "5");
      },
    });
    fakeLayout(m.log(), ROW);
    await vi.advanceTimersByTimeAsync(50);
    for (let i = 1; i <= 12; i++) {
      gw.store.publish("bob", `b${i}`, `m${i}`);
      await vi.advanceTimersByTimeAsync(5);
    }
    expect(m.items().map((li) => li.dataset.seq)).toEqual(["8", "9", "10", "11", "12"]);
    expect(m.el.client?.room("lobby")?.size).toBe(5);
    expect(m.older().hidden).toBe(false);
    // Scrolling back reaches the trimmed messages again, from the server.
    m.older().click();
    await vi.advanceTimersByTimeAsync(10);
    m.older().click();
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items().map((li) => li.dataset.seq)).toEqual(Array.from({ length: 12 }, (_, i) => String(i + 1)));
    expect(m.older().hidden).toBe(true);
  });

  it("does not trim while the reader is scrolled up reading", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 10; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw, { before: (el) => (el.maxRendered = 10) });
    fakeLayout(m.log(), ROW);
    await vi.advanceTimersByTimeAsync(50);
    m.log().scrollTop = 0; // reading the first rows, far from the end
    for (let i = 11; i <= 14; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items()).toHaveLength(14);
    expect(m.log().scrollTop).toBe(0);
    // Back at the end, the next message trims the list to the bound.
    m.log().scrollTop = m.log().scrollHeight - m.log().clientHeight;
    gw.store.publish("bob", "b15", "m15");
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items().map((li) => li.dataset.seq)).toEqual(Array.from({ length: 10 }, (_, i) => String(i + 6)));
  });
});
