// <parley-chat> in the cases Stryker's first full run showed untested
// (docs/testing.md, "Web package"): properties that reflect, an element
// removed before it started, the sign-in error on the host, the status after
// a room change, a submit while not ready, and where the first page leaves
// the reader.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_STRINGS } from "../src/strings.js";
import { FakeGateway } from "./fakes.js";
import { fakeLayout, mount } from "./mount.js";

describe("<parley-chat> (mutants)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("removes the token attribute when the token property is set to null", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    m.el.token = null;
    expect(m.el.hasAttribute("token")).toBe(false);
    expect(m.el.token).toBeNull();
  });

  it("keeps a token provider set while live, without reconnecting for it", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.state).toBe("live");
    const provider = () => "alice";
    m.el.tokenProvider = provider;
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.tokenProvider).toBe(provider);
    expect(gw.sockets).toHaveLength(1);
    expect(m.el.state).toBe("live");
  });

  it("opens nothing when taken off the page before it started", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    m.el.remove(); // in the same task as the insertion
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(0);
    expect(gw.requests).toHaveLength(0);
    expect(m.el.client).toBeNull();
  });

  it("names a refused token on the host as data-error", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("bad");
    const m = mount(gw, { token: "bad" });
    await vi.advanceTimersByTimeAsync(1000);
    expect(m.el.state).toBe("unauthenticated");
    expect(m.el.dataset.error).toBe("UNAUTHENTICATED");
    m.el.setAttribute("token", "alice");
    await vi.advanceTimersByTimeAsync(100);
    expect(m.el.state).toBe("live");
    expect(m.el.dataset.error).toBeUndefined();
  });

  it("says 'Connecting', not 'Reconnecting', when it moves to another room", async () => {
    const gw = new FakeGateway();
    gw.addRoom("other");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.state).toBe("live");
    gw.silentAuth = true; // the new connection stays in 'connecting'
    m.el.setAttribute("room", "other");
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.state).toBe("connecting");
    expect(m.status().textContent).toBe(DEFAULT_STRINGS.statusConnecting);
  });

  it("sends nothing when the composer is submitted while it is not ready", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    m.net.goOffline();
    gw.refuse = true;
    await vi.advanceTimersByTimeAsync(10);
    expect(m.input().disabled).toBe(true);
    m.type("typed before the cut");
    await vi.advanceTimersByTimeAsync(10);
    expect(m.el.client?.pending()).toEqual([]);
    expect(m.pendingItems()).toHaveLength(0);
    expect(m.input().value).toBe("typed before the cut");
  });

  it("shows the end of the first page, the newest messages", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 30; i++) gw.store.publish("bob", `b${i}`, `hello ${i}`);
    const m = mount(gw, { before: (el) => fakeLayout(el.shadowRoot?.querySelector("[part=log]") as HTMLElement) });
    await vi.advanceTimersByTimeAsync(50);
    const log = m.log();
    expect(log.scrollHeight).toBeGreaterThan(log.clientHeight);
    expect(log.scrollTop).toBe(log.scrollHeight);
  });

  it("relabels its status line when given strings before it has a client", () => {
    const gw = new FakeGateway();
    const m = mount(gw, { token: null }); // no token: it waits idle, without a client
    m.el.strings = { statusIdle: "Pas connecté" };
    expect(m.el.client).toBeNull();
    expect(m.status().textContent).toBe("Pas connecté");
    expect(m.el.state).toBe("idle");
  });

  it("keeps the reader's place below the top when older messages load above", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 30; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw, { before: (el) => el.setAttribute("history-limit", "10") });
    fakeLayout(m.log());
    await vi.advanceTimersByTimeAsync(50);
    m.log().scrollTop = 60; // a few rows below the top
    const fromEnd = m.log().scrollHeight - m.log().scrollTop;
    m.older().click();
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items()).toHaveLength(20);
    expect(m.log().scrollHeight - m.log().scrollTop).toBe(fromEnd);
  });
});
