// The composer never drops what the user typed: a body over the server's
// limit is refused beside the composer before it is sent, and a send the
// server refuses comes back into the composer with the reason.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeGateway } from "./fakes.js";
import { mount } from "./mount.js";

describe("<parley-chat> composer", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("refuses a body over the server's limit beside the composer and keeps the text", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 4096;
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.ready).toBe(true);
    expect(m.composerError().hidden).toBe(true);
    const long = "x".repeat(5000);
    m.type(long);
    await vi.advanceTimersByTimeAsync(10);
    // Nothing went out, nothing vanished: the text is still there, with the reason.
    expect(gw.received.filter((f) => f.kind.case === "publish")).toHaveLength(0);
    expect(m.input().value).toBe(long);
    expect(m.pendingItems()).toHaveLength(0);
    expect(m.composerError().hidden).toBe(false);
    expect(m.composerError().getAttribute("role")).toBe("alert");
    expect(m.composerError().textContent).toContain("5000");
    expect(m.composerError().textContent).toContain("4096");
    expect(m.input().getAttribute("aria-invalid")).toBe("true");
    // Shortened, it goes, and the error is gone.
    m.type("x".repeat(4096));
    await vi.advanceTimersByTimeAsync(10);
    expect(m.input().value).toBe("");
    expect(m.composerError().hidden).toBe(true);
    expect(m.input().hasAttribute("aria-invalid")).toBe(false);
    expect(gw.store.stored).toHaveLength(1);
  });

  it("warns while typing once the text is over the limit", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 10;
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const input = m.input();
    input.value = "0123456789A";
    input.dispatchEvent(new Event("input"));
    expect(m.composerError().hidden).toBe(false);
    input.value = "0123456789";
    input.dispatchEvent(new Event("input"));
    expect(m.composerError().hidden).toBe(true);
  });

  it("puts a send the server refused back into the composer, with the reason", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 0; // the limit is not stated: only the server knows it
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.store.maxBody = 100; // ...and it refuses what is longer
    const errors: string[] = [];
    m.el.addEventListener("parley-send-error", (e) => errors.push(e.detail.code));
    m.type("y".repeat(150));
    expect(m.input().value).toBe("");
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toEqual(["BODY_TOO_LONG"]);
    expect(m.input().value).toBe("y".repeat(150));
    expect(m.composerError().hidden).toBe(false);
    expect(m.pendingItems()).toHaveLength(0);
  });

  it("keeps what was typed since, when a refused send comes back", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 0;
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.store.maxBody = 5;
    m.type("too long");
    m.input().value = "next";
    await vi.advanceTimersByTimeAsync(10);
    expect(m.input().value).toBe("too long\n\nnext");
  });
});
