import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ParleyChatElement, defineParleyChat } from "../src/element.js";
import { FakeGateway, FakeNetwork } from "./fakes.js";

defineParleyChat();

function mount(gw: FakeGateway, fetchGate?: Promise<void>) {
  const net = new FakeNetwork();
  const el = document.createElement("parley-chat") as ParleyChatElement;
  el.options = {
    WebSocket: gw.WebSocket,
    fetch: fetchGate ? async (u, i) => (await fetchGate, gw.fetch(u, i)) : gw.fetch,
    network: net,
    backoff: { random: () => 0.5 },
  };
  el.setAttribute("room", "lobby");
  el.setAttribute("gateway", "http://gw.test");
  el.setAttribute("token", "alice");
  document.body.append(el);
  const q = <T extends Element>(sel: string) => el.shadowRoot?.querySelector(sel) as T;
  const input = () => q<HTMLTextAreaElement>("[part=input]");
  const sendButton = () => q<HTMLButtonElement>("[part=send]");
  const items = () => [...(el.shadowRoot?.querySelectorAll("li[data-seq]") ?? [])] as HTMLElement[];
  const pendingItems = () => [...(el.shadowRoot?.querySelectorAll("li[data-pending=true]") ?? [])] as HTMLElement[];
  return { el, net, input, sendButton, items, pendingItems, status: () => q<HTMLElement>("[part=status]") };
}

describe("<parley-chat>", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("keeps the composer disabled until the history is shown and the link is live", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "first");
    gw.store.publish("bob", "b2", "second");
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { el, input, sendButton, items } = mount(gw, gate);
    await vi.advanceTimersByTimeAsync(50);
    // The WebSocket is authenticated, but the history has not arrived.
    expect(gw.sockets).toHaveLength(1);
    expect(el.dataset.state).not.toBe("live");
    expect(input().disabled).toBe(true);
    expect(sendButton().disabled).toBe(true);
    expect(items()).toHaveLength(0);
    release();
    await vi.advanceTimersByTimeAsync(50);
    expect(items().map((li) => li.dataset.seq)).toEqual(["1", "2"]);
    expect(el.dataset.state).toBe("live");
    expect(el.hasAttribute("data-ready")).toBe(true);
    expect(input().disabled).toBe(false);
    expect(sendButton().disabled).toBe(false);
  });

  it("disables the composer when the link breaks and re-enables it after the catch-up", async () => {
    const gw = new FakeGateway();
    const { el, input, items, status } = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(el.dataset.state).toBe("live");
    const states: string[] = [];
    el.addEventListener("parley-state", (e) => states.push((e as CustomEvent).detail.state));

    gw.blackhole = true;
    gw.store.publish("bob", "b1", "while you were away");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(el.dataset.state).not.toBe("live");
    expect(input().disabled).toBe(true);
    expect(status().textContent).toMatch(/Offline|Connecting/);

    gw.blackhole = false;
    gw.store.publish("bob", "b2", "still away");
    await vi.advanceTimersByTimeAsync(15_000);
    expect(states).toContain("offline");
    expect(states).toContain("catching-up");
    expect(states[states.length - 1]).toBe("live");
    expect(input().disabled).toBe(false);
    expect(items().map((li) => li.textContent)).toEqual([
      expect.stringContaining("while you were away"),
      expect.stringContaining("still away"),
    ]);
  });

  it("stays disabled through the whole catch-up: REST, replay and Subscribed, and only then enables", async () => {
    const gw = new FakeGateway();
    let gate: Promise<void> | null = null;
    let release!: () => void;
    const { el, input, sendButton, items } = mount(gw);
    el.options.fetch = async (u, i) => {
      if (gate) await gate;
      return gw.fetch(u, i);
    };
    el.remove();
    document.body.append(el); // restart with the gated fetch
    await vi.advanceTimersByTimeAsync(50);
    expect(el.dataset.state).toBe("live");

    // Every moment the composer is enabled, record what was shown then.
    const enabledAt: Array<{ rows: number; subscribed: boolean; state: string | undefined }> = [];
    let subscribedSent = false;
    const watch = new MutationObserver(() => {
      if (!input().disabled || !sendButton().disabled || el.ready || el.hasAttribute("data-ready")) {
        enabledAt.push({ rows: items().length, subscribed: subscribedSent, state: el.dataset.state });
      }
    });
    watch.observe(el, { attributes: true });
    watch.observe(input(), { attributes: true });
    watch.observe(sendButton(), { attributes: true });
    const sample = () => {
      if (!input().disabled || el.ready) enabledAt.push({ rows: items().length, subscribed: subscribedSent, state: el.dataset.state });
    };
    for (const t of ["parley-state", "parley-message", "parley-history"] as const) el.addEventListener(t, sample);

    gw.blackhole = true;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(el.dataset.state).not.toBe("live");
    for (let i = 1; i <= 3; i++) gw.store.publish("bob", `b${i}`, `missed ${i}`);
    gate = new Promise<void>((r) => {
      release = r;
    });
    gw.holdSubscribed = true;
    gw.blackhole = false;
    await vi.advanceTimersByTimeAsync(10_000);
    // Reconnected and authenticated, but the database has not answered yet.
    expect(el.dataset.state).toBe("catching-up");
    expect(input().disabled).toBe(true);
    expect(items()).toHaveLength(0);
    // The REST catch-up is in: the missed messages are shown, the
    // subscription is not confirmed yet, so still no typing.
    release();
    gate = null;
    await vi.advanceTimersByTimeAsync(50);
    expect(items().map((li) => li.dataset.seq)).toEqual(["1", "2", "3"]);
    expect(el.dataset.state).toBe("catching-up");
    expect(input().disabled).toBe(true);
    expect(sendButton().disabled).toBe(true);
    expect(el.ready).toBe(false);
    // Subscribed arrives: live, enabled.
    subscribedSent = true;
    gw.holdSubscribed = false;
    gw.releaseSubscribed();
    await vi.advanceTimersByTimeAsync(50);
    watch.disconnect();
    expect(el.dataset.state).toBe("live");
    expect(input().disabled).toBe(false);
    expect(enabledAt.length).toBeGreaterThan(0);
    // Never enabled before that moment, nor with the catch-up incomplete.
    for (const at of enabledAt) expect(at).toEqual({ rows: 3, subscribed: true, state: "live" });
  });

  it("shows a sent message as pending until acked, then in seq order", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "hi");
    const { el, input, items, pendingItems } = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.deafClient = true; // the ack will not arrive for now
    input().value = "hello bob";
    el.shadowRoot?.querySelector("form")?.dispatchEvent(new Event("submit", { cancelable: true }));
    expect(input().value).toBe("");
    expect(pendingItems().map((li) => li.textContent)).toEqual([expect.stringContaining("hello bob")]);
    expect(gw.store.stored).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(11_000); // dead link noticed
    expect(input().disabled).toBe(true);
    expect(pendingItems()).toHaveLength(1);
    gw.deafClient = false;
    await vi.advanceTimersByTimeAsync(15_000);
    expect(el.dataset.state).toBe("live");
    expect(pendingItems()).toHaveLength(0);
    expect(items().map((li) => [li.dataset.seq, li.dataset.pending])).toEqual([
      ["1", "false"],
      ["2", "false"],
    ]);
    expect(gw.store.stored).toHaveLength(2);
  });

  it("pages back with 'Load earlier messages', keeping seq order", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 7; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const { el, items } = mount(gw);
    el.setAttribute("history-limit", "3");
    await vi.advanceTimersByTimeAsync(50);
    const older = el.shadowRoot?.querySelector("[part=load-older]") as HTMLButtonElement;
    expect(items().map((li) => li.dataset.seq)).toEqual(["5", "6", "7"]);
    expect(older.hidden).toBe(false);
    older.click();
    await vi.advanceTimersByTimeAsync(10);
    expect(items().map((li) => li.dataset.seq)).toEqual(["2", "3", "4", "5", "6", "7"]);
    expect(older.hidden).toBe(false);
    older.click();
    await vi.advanceTimersByTimeAsync(10);
    expect(items().map((li) => li.dataset.seq)).toEqual(["1", "2", "3", "4", "5", "6", "7"]);
    expect(older.hidden).toBe(true);
  });

  it("renders edits and deletions in place", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "typo");
    gw.store.publish("bob", "b2", "oops");
    const { items } = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.store.edit(1n, "fixed");
    gw.store.remove(2n);
    await vi.advanceTimersByTimeAsync(10);
    const [a, b] = items();
    expect(a?.querySelector("[part=body]")?.textContent).toBe("fixed");
    expect(a?.hasAttribute("data-edited")).toBe(true);
    expect(b?.hasAttribute("data-deleted")).toBe(true);
    expect(items()).toHaveLength(2);
  });

  it("closes its WebSocket when removed from the page", async () => {
    const gw = new FakeGateway();
    const { el } = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const s = gw.last;
    el.remove();
    expect(s.closedByClient).toBe(1000);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(gw.sockets).toHaveLength(1);
  });

  it("says so when the room does not exist, and never enables the composer", async () => {
    const gw = new FakeGateway();
    const { el, input, status } = mount(gw);
    el.setAttribute("room", "nowhere");
    await vi.advanceTimersByTimeAsync(2000);
    expect(el.dataset.error).toBe("ROOM_NOT_FOUND");
    expect(status().textContent).toBe("Room not found");
    expect(input().disabled).toBe(true);
    el.setAttribute("room", "lobby");
    await vi.advanceTimersByTimeAsync(100);
    expect(el.dataset.error).toBeUndefined();
    expect(input().disabled).toBe(false);
  });

  it("goes offline at once on the browser's offline event", async () => {
    const gw = new FakeGateway();
    const { el, net, input } = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(input().disabled).toBe(false);
    gw.refuse = true;
    net.goOffline();
    expect(el.dataset.state).toBe("offline");
    expect(input().disabled).toBe(true);
  });
});
