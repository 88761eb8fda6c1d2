// What the element says about its state: a refused token is a sign-in
// problem with its own state and event, an unknown room looks like an error,
// every UI string can be replaced, and its events are typed.
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from "vitest";
import type { AuthFailureReason } from "../src/token-source.js";
import type { Message } from "../src/protocol.js";
import { DEFAULT_STRINGS } from "../src/strings.js";
import { FakeGateway } from "./fakes.js";
import { mount } from "./mount.js";

describe("<parley-chat> states", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("shows a refused token as a sign-in problem, fires parley-auth-error, and stops retrying", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("expired");
    const m = mount(gw, { token: "expired" });
    const fired: string[] = [];
    m.el.addEventListener("parley-auth-error", (e) => fired.push(e.detail.reason));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(m.el.state).toBe("unauthenticated");
    expect(m.el.dataset.state).toBe("unauthenticated");
    expect(m.status().dataset.state).toBe("unauthenticated");
    expect(m.status().textContent).toBe(DEFAULT_STRINGS.statusUnauthenticated);
    expect(m.status().textContent).not.toMatch(/Offline|retrying/);
    expect(fired).toEqual(["rejected"]);
    expect(gw.sockets.length).toBeLessThanOrEqual(1);
    expect(m.input().disabled).toBe(true);
    // A new token attribute signs in again.
    m.el.setAttribute("token", "alice");
    await vi.advanceTimersByTimeAsync(100);
    expect(m.el.state).toBe("live");
    expect(m.input().disabled).toBe(false);
  });

  it("asks its tokenProvider for a fresh token after a refusal", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("stale");
    const reasons: string[] = [];
    const m = mount(gw, {
      token: null,
      before: (el) => {
        el.tokenProvider = async ({ reason }) => {
          reasons.push(reason);
          return reason === "rejected" ? "alice" : "stale";
        };
      },
    });
    await vi.advanceTimersByTimeAsync(200);
    expect(m.el.state).toBe("live");
    expect(reasons).toContain("rejected");
  });

  it("shows an unknown room as an error, not with the green 'connected' dot", async () => {
    const gw = new FakeGateway();
    const m = mount(gw, { room: "nowhere" });
    await vi.advanceTimersByTimeAsync(2000);
    expect(m.el.dataset.error).toBe("ROOM_NOT_FOUND");
    expect(m.status().dataset.state).toBe("error");
    expect(m.status().textContent).toBe("Room not found");
    // The stylesheet paints the error state with the error colour.
    const css = m.root.querySelector("style")?.textContent ?? "";
    expect(css).toMatch(/\.status\[data-state="error"\][^{]*\{[^}]*--parley-error/);
    expect(m.input().disabled).toBe(true);
  });

  it("takes replacement strings for every text it shows", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 3; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw, {
      before: (el) => {
        el.setAttribute("history-limit", "2");
        el.strings = { send: "Senden", inputPlaceholder: "Nachricht…", statusLive: "Verbunden", loadOlder: "Ältere laden" };
      },
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(m.sendButton().textContent).toBe("Senden");
    expect(m.input().placeholder).toBe("Nachricht…");
    expect(m.status().textContent).toBe("Verbunden");
    expect(m.older().textContent).toBe("Ältere laden");
    // Unset strings keep their English default; the getter gives the whole set.
    expect(m.el.strings.inputLabel).toBe(DEFAULT_STRINGS.inputLabel);
    expect(m.el.strings.send).toBe("Senden");
    // Changed later, they apply at once.
    m.el.strings = { ...m.el.strings, statusLive: "Online" };
    expect(m.status().textContent).toBe("Online");
    expect(m.sendButton().textContent).toBe("Senden");
    m.el.strings = { bodyTooLong: (size, limit) => `${size}/${limit}` };
    gw.store.maxBody = 4;
    m.el.remove();
    document.body.append(m.el);
    await vi.advanceTimersByTimeAsync(50);
    m.type("12345");
    expect(m.composerError().textContent).toBe("5/4");
    expect(m.sendButton().textContent).toBe(DEFAULT_STRINGS.send);
  });

  it("types the detail of its events for TypeScript users", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    const got: string[] = [];
    m.el.addEventListener("parley-message", (e) => {
      expectTypeOf(e.detail.message).toEqualTypeOf<Message>();
      expectTypeOf(e.detail.replay).toEqualTypeOf<boolean>();
      got.push(e.detail.message.body);
    });
    m.el.addEventListener("parley-state", (e) => {
      expectTypeOf(e.detail.state).toEqualTypeOf<typeof m.el.state>();
      got.push(`state:${e.detail.state}`);
    });
    m.el.addEventListener("parley-auth-error", (e) => {
      expectTypeOf(e.detail.reason).toEqualTypeOf<AuthFailureReason>();
    });
    document.addEventListener("parley-history", (e) => {
      expectTypeOf(e.detail.hasOlder).toEqualTypeOf<boolean>();
      got.push(`history:${e.detail.messages.length}`);
    });
    await vi.advanceTimersByTimeAsync(50);
    gw.store.publish("bob", "b1", "typed");
    await vi.advanceTimersByTimeAsync(10);
    expect(got).toContain("history:0");
    expect(got).toContain("state:live");
    expect(got).toContain("typed");
  });
});
