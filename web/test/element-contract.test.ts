// The element's public contract: its shadow DOM (parts, roles, labels), its
// status line in every state, its attributes and properties, and keyboard use.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ParleyChatElement } from "../src/element.js";
import { ErrorCode } from "../src/protocol.js";
import { DEFAULT_STRINGS } from "../src/strings.js";
import { FakeGateway } from "./fakes.js";
import { mount } from "./mount.js";

/** tag, part, class, and the attributes that matter to users and tools. */
function describeTree(root: ParentNode): string[] {
  const out: string[] = [];
  const attrs = ["role", "aria-live", "aria-relevant", "aria-label", "type", "id", "hidden", "placeholder", "rows"];
  for (const e of root.querySelectorAll("*")) {
    if (e.tagName === "STYLE") continue;
    const bits = [e.tagName.toLowerCase()];
    if (e.getAttribute("part")) bits.push(`part=${e.getAttribute("part")}`);
    if (e.getAttribute("class")) bits.push(`.${e.getAttribute("class")}`);
    for (const a of attrs) if (e.hasAttribute(a)) bits.push(`${a}=${e.getAttribute(a)}`);
    out.push(bits.join(" "));
  }
  return out;
}

function key(el: HTMLElement, init: KeyboardEventInit): KeyboardEvent {
  const ev = new KeyboardEvent("keydown", { ...init, cancelable: true, bubbles: true });
  el.dispatchEvent(ev);
  return ev;
}

describe("<parley-chat> contract", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it("builds the documented shadow DOM", () => {
    const el = document.createElement("parley-chat") as ParleyChatElement;
    expect(describeTree(el.shadowRoot as ShadowRoot)).toEqual([
      "section part=container .chat",
      "header part=header .header",
      "span part=title .title",
      "span part=presence .presence-line hidden=",
      "span part=status .status role=status aria-live=polite",
      "div part=moderation .moderation-bar role=group aria-label=Moderation hidden=",
      "label part=room-mode-label .room-mode-label",
      "select part=room-mode .room-mode id=room-mode",
      "option",
      "option",
      "option",
      "span part=moderation-error .error role=alert hidden=",
      "div part=log .log",
      "button part=load-older .older type=button hidden=",
      "div part=empty .empty hidden=",
      "ol part=messages .messages aria-label=Messages",
      "ol part=pending .pending hidden=",
      "div part=announcer .visually-hidden role=log aria-live=polite aria-relevant=additions",
      "p part=typing .typing-line aria-live=polite",
      "form part=composer .composer",
      "p part=composer-notice .composer-notice role=status hidden=",
      "textarea part=input .input aria-label=Message placeholder=Write a message… rows=1",
      "button part=send .send type=submit",
      "p part=composer-error .error role=alert id=composer-error hidden=",
    ]);
    expect(el.state).toBe("idle");
    expect(el.ready).toBe(false);
    expect(el.client).toBeNull();
    const s = el.shadowRoot?.querySelector("[part=status]") as HTMLElement;
    expect([s.dataset.state, s.textContent]).toEqual(["idle", DEFAULT_STRINGS.statusIdle]);
    // The constructor leaves the host's attributes alone (custom element rules).
    expect(el.hasAttribute("data-state")).toBe(false);
  });

  it("says what it is doing in every state", async () => {
    const gw = new FakeGateway();
    gw.silentAuth = true;
    const m = mount(gw, { before: (el) => (el.options = { ...el.options, backoff: { random: () => 0.99 } }) });
    const status = () => [m.status().dataset.state, m.status().textContent, m.el.dataset.state];
    await vi.advanceTimersByTimeAsync(10);
    expect(status()).toEqual(["connecting", "Connecting…", "connecting"]);
    gw.silentAuth = false;
    gw.holdSubscribed = true;
    gw.last.serverClose(4503); // retried at once
    await vi.advanceTimersByTimeAsync(10);
    expect(status()).toEqual(["catching-up", "Catching up…", "catching-up"]);
    gw.releaseSubscribed();
    gw.holdSubscribed = false;
    await vi.advanceTimersByTimeAsync(10);
    expect(status()).toEqual(["live", "Connected", "live"]);
    expect(m.el.title).toBe("");
    expect(m.q("[part=title]").textContent).toBe("#lobby");
    gw.silentAuth = true;
    gw.last.serverClose(4503);
    expect(status()).toEqual(["offline", "Offline — reconnecting…", "offline"]); // retried at once
    await vi.advanceTimersByTimeAsync(10);
    // Having been live, a new attempt is shown as reconnecting.
    expect(status()).toEqual(["reconnecting", "Offline — reconnecting…", "connecting"]);
    gw.refuse = true;
    await vi.advanceTimersByTimeAsync(8000); // no Authenticated: the attempt is given up
    expect(status()).toEqual(["offline", "Offline — reconnecting…", "offline"]); // 495 ms: under a second
    await vi.advanceTimersByTimeAsync(600);
    expect(status()).toEqual(["offline", "Offline — reconnecting…", "offline"]); // 990 ms: still under
    await vi.advanceTimersByTimeAsync(1000);
    expect(status()).toEqual(["offline", "Offline — retrying in 2 s", "offline"]); // 1980 ms
    await vi.advanceTimersByTimeAsync(2000);
    expect(m.status().textContent).toBe("Offline — retrying in 4 s"); // 3960 ms
    m.el.remove();
    expect(status()).toEqual(["idle", "Not connected", "idle"]);
  });

  it("sends with Enter, and not with Shift+Enter or while composing", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const input = m.input();
    input.value = "line one";
    expect(key(input, { key: "Enter", shiftKey: true }).defaultPrevented).toBe(false);
    expect(key(input, { key: "Enter", isComposing: true }).defaultPrevented).toBe(false);
    expect(key(input, { key: "a" }).defaultPrevented).toBe(false);
    expect(input.value).toBe("line one");
    expect(key(input, { key: "Enter" }).defaultPrevented).toBe(true);
    expect(input.value).toBe("");
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.stored.map((x) => x.body)).toEqual(["line one"]);
    // Empty or blank text is not sent.
    input.value = "  \n ";
    key(input, { key: "Enter" });
    m.form().dispatchEvent(new Event("submit", { cancelable: true }));
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.stored).toHaveLength(1);
    expect(input.value).toBe("  \n ");
    expect(m.composerError().hidden).toBe(true);
  });

  it("send() is for when the composer would accept the text", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 10;
    gw.holdSubscribed = true;
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.send("early")).toBeNull(); // not live yet
    gw.releaseSubscribed();
    await vi.advanceTimersByTimeAsync(10);
    expect(m.el.send("   ")).toBeNull();
    expect(m.el.send("01234567890")).toBeNull(); // over the limit
    const p = m.el.send("fine");
    expect(p?.body).toBe("fine");
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.stored.map((x) => x.body)).toEqual(["fine"]);
  });

  it("reads its attributes: format, history-limit, gateway (default: the page's origin)", async () => {
    vi.stubGlobal("location", { origin: "http://gw.test", href: "http://gw.test/app" });
    const gw = new FakeGateway();
    for (let i = 1; i <= 60; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw, {
      before: (el) => {
        el.removeAttribute("gateway");
        el.setAttribute("history-limit", "zero");
      },
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets[0]?.url).toBe("ws://gw.test/v1/stream");
    expect(gw.sockets[0]?.offered).toEqual(["parley.v1.proto"]);
    expect(gw.requests[0]).toBe("GET /v1/rooms/lobby/messages?limit=50");
    m.el.setAttribute("history-limit", "0");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.requests.filter((r) => r.endsWith("?limit=50"))).toHaveLength(2);
    m.el.setAttribute("history-limit", "-3");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.requests.filter((r) => r.endsWith("?limit=50"))).toHaveLength(3);
    m.el.setAttribute("history-limit", "1");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.requests).toContain("GET /v1/rooms/lobby/messages?limit=1");
    m.el.setAttribute("history-limit", "7");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.requests).toContain("GET /v1/rooms/lobby/messages?limit=7");
    expect(m.items()).toHaveLength(7);
    m.el.setAttribute("format", "json");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.last.offered).toEqual(["parley.v1.json"]);
  });

  it("restarts once for a burst of attribute changes, and not for a value set again", async () => {
    const gw = new FakeGateway();
    gw.addRoom("other");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(1);
    m.el.setAttribute("room", "lobby"); // the same value
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(1);
    m.el.setAttribute("room", "other");
    m.el.setAttribute("history-limit", "3");
    m.el.setAttribute("gateway", "http://gw.test/");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(2);
    expect(m.el.room).toBe("other");
    m.el.room = "lobby";
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(3);
    expect(m.el.client?.room("lobby")).toBeDefined();
    // The token attribute is read on the next connection: no restart.
    m.el.setAttribute("token", "alice2");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(3);
    // Off the page, changes wait until it is back.
    m.el.remove();
    m.el.setAttribute("room", "other");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(3);
    document.body.append(m.el);
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(4);
  });

  it("waits idle for a room and a token; a provider given later starts it", async () => {
    const gw = new FakeGateway();
    const m = mount(gw, { token: null });
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.state).toBe("idle");
    expect(gw.sockets).toHaveLength(0);
    m.el.tokenProvider = () => "alice";
    expect(m.el.tokenProvider).not.toBeNull();
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.state).toBe("live");
    const n = mount(gw, { room: "" });
    await vi.advanceTimersByTimeAsync(50);
    expect(n.el.state).toBe("idle");
    expect(n.q("[part=title]").textContent).toBe("");
    const g = mount(gw, { token: null, before: (el) => (el.getToken = () => "carol") });
    await vi.advanceTimersByTimeAsync(50);
    expect(g.el.state).toBe("live");
    expect(g.el.client?.user?.id).toBe("carol");
  });

  it("takes room, gateway and token as properties too, as React 19 and Vue set them", async () => {
    const gw = new FakeGateway();
    const m = mount(gw, { token: null, room: "" });
    const el = m.el;
    el.removeAttribute("gateway");
    await vi.advanceTimersByTimeAsync(50);
    expect(el.state).toBe("idle");
    // what a framework does when `name in el`: assign the property
    el.room = "lobby";
    el.gateway = "http://gw.test";
    el.token = "alice";
    expect([el.getAttribute("room"), el.getAttribute("gateway"), el.getAttribute("token")]).toEqual([
      "lobby",
      "http://gw.test",
      "alice",
    ]);
    expect([el.room, el.gateway, el.token]).toEqual(["lobby", "http://gw.test", "alice"]);
    await vi.advanceTimersByTimeAsync(50);
    expect(el.state).toBe("live");
    expect(el.client?.user?.id).toBe("alice");
    expect(gw.last.url).toBe("ws://gw.test/v1/stream");
    el.token = null;
    expect(el.hasAttribute("token")).toBe(false);
    expect(el.token).toBeNull();
  });

  it("names the author of a pending message: the user once known, 'me' before", async () => {
    const gw = new FakeGateway();
    gw.silentAuth = true;
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    m.el.client?.send("lobby", "before sign-in");
    const author = () => m.pendingItems().map((li) => li.querySelector("[part=author]")?.textContent);
    expect(author()).toEqual(["me"]);
    gw.silentAuth = false;
    gw.deafClient = true;
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(10);
    gw.deafClient = false;
    await vi.advanceTimersByTimeAsync(20_000);
    m.el.client?.send("lobby", "after");
    gw.deafClient = true;
    m.el.client?.send("lobby", "after, pending");
    expect(author().pop()).toBe("alice");
  });

  it("shows 'No messages yet.' only while there is nothing to show", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    const empty = () => m.q<HTMLElement>("[part=empty]");
    expect(empty().hidden).toBe(true);
    await vi.advanceTimersByTimeAsync(50);
    expect(empty().hidden).toBe(false);
    expect(empty().textContent).toBe("No messages yet.");
    gw.deafClient = true;
    m.type("first!");
    expect(empty().hidden).toBe(true);
    const n = mount(new FakeGateway());
    n.el.client;
    await vi.advanceTimersByTimeAsync(50);
    const gw2 = new FakeGateway();
    gw2.store.publish("bob", "b1", "hi");
    const o = mount(gw2);
    await vi.advanceTimersByTimeAsync(50);
    expect(o.q<HTMLElement>("[part=empty]").hidden).toBe(true);
  });

  it("keeps only the last few announcements in the live region", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    for (let i = 1; i <= 5; i++) gw.store.publish("bob", `b${i}`, `news ${i}`);
    gw.store.remove(5n);
    await vi.advanceTimersByTimeAsync(10);
    expect([...m.announcer().children].map((p) => p.textContent)).toEqual(["bob: news 3", "bob: news 4", "bob: news 5"]);
    const anon = gw.store.publish("", "x", "who?");
    void anon;
    await vi.advanceTimersByTimeAsync(10);
    expect(m.announcer().lastElementChild?.textContent).toBe("unknown: who?");
  });

  it("reports a room error only for its own room", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const errors: string[] = [];
    m.el.addEventListener("parley-error", (e) => errors.push(e.detail.code));
    m.el.client?.subscribe("nowhere");
    await vi.advanceTimersByTimeAsync(50);
    expect(errors).toContain("ROOM_NOT_FOUND");
    expect(m.el.dataset.error).toBeUndefined();
    expect(m.status().dataset.state).toBe("live");
    const p = mount(gw, { room: "private" });
    gw.addRoom("private");
    gw.refuseSubscribe.set("private", ErrorCode.PERMISSION_DENIED);
    await vi.advanceTimersByTimeAsync(50);
    expect(p.status().textContent).toBe("Error: PERMISSION_DENIED");
    expect(p.el.dataset.error).toBe("PERMISSION_DENIED");
  });
});
