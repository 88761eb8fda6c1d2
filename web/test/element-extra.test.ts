// The element's remaining promises: event names, scrolling at the edges,
// what is shown for sends it did not type, and failures it words.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeGateway } from "./fakes.js";
import { fakeLayout, mount } from "./mount.js";

describe("<parley-chat> details", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("fires its events under their documented names", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "mine");
    const m = mount(gw);
    const fired: string[] = [];
    for (const t of ["parley-state", "parley-history", "parley-message", "parley-edit", "parley-delete", "parley-ack", "parley-send-error", "parley-error"] as const) {
      document.addEventListener(t, (e) => fired.push(`${t}${e.composed && e.bubbles ? "" : " (not composed)"}`));
    }
    await vi.advanceTimersByTimeAsync(50);
    m.el.send("hello");
    await vi.advanceTimersByTimeAsync(10);
    gw.store.publish("bob", "b1", "hi");
    gw.store.edit(1n, "edited");
    gw.store.remove(1n);
    m.el.client?.send("lobby", "   ");
    m.el.client?.subscribe("nowhere");
    await vi.advanceTimersByTimeAsync(50);
    for (const t of ["parley-state", "parley-history", "parley-message", "parley-edit", "parley-delete", "parley-ack", "parley-send-error", "parley-error"]) {
      expect(fired).toContain(t);
    }
    expect(fired.some((f) => f.includes("not composed"))).toBe(false);
  });

  it("shows the acked message at once, without waiting for its copy on the stream", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.q<HTMLElement>("[part=empty]").hidden).toBe(false);
    gw.holdEvents = true;
    m.type("quick");
    await vi.advanceTimersByTimeAsync(10);
    expect(m.pendingItems()).toHaveLength(0);
    expect(m.items().map((li) => li.querySelector("[part=body]")?.textContent)).toEqual(["quick"]);
    expect(m.q<HTMLElement>("[part=empty]").hidden).toBe(true);
  });

  it("hides 'No messages yet.' when the first message arrives live", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.q<HTMLElement>("[part=empty]").hidden).toBe(false);
    gw.store.publish("bob", "b1", "first");
    await vi.advanceTimersByTimeAsync(10);
    expect(m.q<HTMLElement>("[part=empty]").hidden).toBe(true);
  });

  it("ignores sends to other rooms, and gives back only what was typed here", async () => {
    const gw = new FakeGateway();
    gw.addRoom("other");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.deafClient = true;
    m.el.client?.send("other", "elsewhere");
    expect(m.pendingItems()).toHaveLength(0);
    gw.deafClient = false;
    m.input().value = "draft";
    m.el.client?.send("lobby", "   "); // refused, but not typed in this composer
    await vi.advanceTimersByTimeAsync(10);
    expect(m.input().value).toBe("draft");
    expect(m.composerError().hidden).toBe(true);
  });

  it("links the error to the composer for screen readers, and says nothing while the box is blank", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 3;
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    m.input().value = "    ";
    m.input().dispatchEvent(new Event("input"));
    expect(m.composerError().hidden).toBe(true);
    m.input().value = "long";
    m.input().dispatchEvent(new Event("input"));
    expect(m.input().getAttribute("aria-describedby")).toBe("composer-error");
    expect(m.composerError().textContent).toBe("This message is too long: 4 bytes, the limit is 3. Shorten it to send it.");
    m.input().value = "ok";
    m.input().dispatchEvent(new Event("input"));
    expect(m.input().hasAttribute("aria-describedby")).toBe(false);
    expect(m.composerError().textContent).toBe("");
  });

  it("words an empty edit and an edit refused for a reason that is not HTTP", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "mine");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const row = () => m.items()[0];
    (row()?.querySelector("[part=edit]") as HTMLButtonElement).click();
    const input = row()?.querySelector("[part=edit-input]") as HTMLTextAreaElement;
    const save = () => row()?.querySelector("[part=edit-form]")?.dispatchEvent(new Event("submit", { cancelable: true }));
    input.value = "  ";
    save();
    expect(row()?.querySelector("[part=edit-error]")?.textContent).toBe("The message is empty.");
    gw.rejected.add("alice");
    input.value = "new words";
    save();
    await vi.advanceTimersByTimeAsync(10);
    expect(row()?.querySelector("[part=edit-error]")?.textContent).toBe(
      "That did not work (ERROR): the token provider handed back the refused token.",
    );
  });

  it("loads one older page at a time, however often it is asked", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 9; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw, { before: (el) => el.setAttribute("history-limit", "3") });
    fakeLayout(m.log());
    await vi.advanceTimersByTimeAsync(50);
    const before = gw.requests.filter((r) => r.includes("before=")).length;
    m.older().click();
    m.older().click();
    m.log().scrollTop = 0;
    m.log().dispatchEvent(new Event("scroll"));
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.requests.filter((r) => r.includes("before=")).length - before).toBe(1);
    expect(m.older().disabled).toBe(false);
  });

  it("loads older pages from 24 px below the top, not further down", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 30; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw, { before: (el) => el.setAttribute("history-limit", "10") });
    fakeLayout(m.log());
    await vi.advanceTimersByTimeAsync(50);
    const count = () => m.items().length;
    m.log().scrollTop = 25;
    m.log().dispatchEvent(new Event("scroll"));
    await vi.advanceTimersByTimeAsync(10);
    expect(count()).toBe(10);
    m.log().scrollTop = 24;
    m.log().dispatchEvent(new Event("scroll"));
    await vi.advanceTimersByTimeAsync(10);
    expect(count()).toBe(20);
  });

  it("follows the end only when the reader is within 48 px of it, and always for their own send", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 20; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const m = mount(gw);
    fakeLayout(m.log());
    await vi.advanceTimersByTimeAsync(50);
    const log = m.log();
    const bottom = () => log.scrollHeight - log.clientHeight;
    log.scrollTop = bottom() - 48; // exactly 48 px up: reading, not following
    const at = log.scrollTop;
    gw.store.publish("bob", "x1", "new");
    await vi.advanceTimersByTimeAsync(10);
    expect(log.scrollTop).toBe(at);
    log.scrollTop = bottom() - 47;
    gw.store.publish("bob", "x2", "newer");
    await vi.advanceTimersByTimeAsync(10);
    expect(log.scrollTop).toBe(log.scrollHeight);
    // Scrolled far up, a message and one's own send in the same moment: the send wins.
    log.scrollTop = 0;
    gw.store.publish("bob", "x3", "while typing");
    m.type("mine");
    await vi.advanceTimersByTimeAsync(10);
    expect(log.scrollTop).toBe(log.scrollHeight);
  });

  it("shows 'Disconnected' when its client was closed, and leaves the host alone while detached", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.form().dataset.disabled).toBe("false");
    m.el.client?.close();
    expect(m.status().textContent).toBe("Disconnected");
    expect(m.status().dataset.state).toBe("closed");
    expect(m.form().dataset.disabled).toBe("true");
    const detached = document.createElement("parley-chat");
    detached.strings = { send: "Go" };
    expect(detached.hasAttribute("data-state")).toBe(false);
  });

  it("tries again at once when given a token provider after a sign-in error", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("expired");
    const m = mount(gw, { token: "expired" });
    await vi.advanceTimersByTimeAsync(100);
    expect(m.el.state).toBe("unauthenticated");
    const sockets = gw.sockets.length;
    m.el.tokenProvider = () => "alice";
    await vi.advanceTimersByTimeAsync(50);
    expect(m.el.state).toBe("live");
    expect(gw.sockets.length).toBe(sockets + 1);
  });

  it("announces by id when the author has no display name", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.last.push({ kind: { case: "event", value: { type: 1, message: { room: "lobby", seq: 1n, rev: 1n, body: "hey", author: { id: "zed" } } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(m.announcer().textContent).toBe("zed: hey");
  });
});
