// <parley-chat> in a moderated room: the organizer's face (mode="organizer"
// and the server's role), a participant's composer following mutes and room
// modes live with the reason shown, presence, the typing line, the unread
// divider and marking what was seen as read.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MARK_READ_DEBOUNCE_MS, TYPING_SHOWN_MS } from "../src/constants.js";
import type { ParleyChatElement } from "../src/element.js";
import { ActionKind, RoomMode } from "../src/protocol.js";
import { DEFAULT_STRINGS } from "../src/strings.js";
import { FakeGateway } from "./fakes.js";
import { mount } from "./mount.js";

type Mounted = ReturnType<typeof mount>;

function view(m: Mounted) {
  const notice = m.q<HTMLElement>("[part=composer-notice]");
  return {
    disabled: m.input().disabled && m.sendButton().disabled,
    notice: notice.hidden ? null : notice.textContent,
    rule: m.el.dataset.postRule ?? null,
  };
}

const moderationShown = (m: Mounted) => !m.q<HTMLElement>("[part=moderation]").hidden;
const row = (m: Mounted, body: string) => m.items().find((li) => li.querySelector("[part=body]")?.textContent === body) as HTMLElement;

/** A fake IntersectionObserver: the test says which rows are on screen. */
class FakeObserver {
  static all: FakeObserver[] = [];
  readonly watched = new Set<Element>();
  constructor(private readonly cb: (entries: Array<{ target: Element; isIntersecting: boolean }>) => void) {
    FakeObserver.all.push(this);
  }
  observe(el: Element) {
    this.watched.add(el);
  }
  unobserve(el: Element) {
    this.watched.delete(el);
  }
  disconnect() {
    this.watched.clear();
  }
  show(els: Element[]) {
    this.cb(els.map((target) => ({ target, isIntersecting: true })));
  }
  hide(els: Element[]) {
    this.cb(els.map((target) => ({ target, isIntersecting: false })));
  }
}

describe("<parley-chat> in a moderated room", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    FakeObserver.all = [];
    vi.stubGlobal("IntersectionObserver", FakeObserver);
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it("shows the organizer's controls only with mode=organizer and the organizer role from the server", async () => {
    const gw = new FakeGateway();
    const olga = mount(gw, { token: "olga@organizer", before: (el) => el.setAttribute("mode", "organizer") });
    const pat = mount(gw, { token: "pat", before: (el) => el.setAttribute("mode", "organizer") });
    const plain = mount(gw, { token: "olga@organizer" });
    await vi.advanceTimersByTimeAsync(50);
    expect([moderationShown(olga), olga.el.moderating, olga.el.hasAttribute("data-moderating")]).toEqual([true, true, true]);
    expect([moderationShown(pat), pat.el.moderating]).toEqual([false, false]);
    expect([moderationShown(plain), plain.el.mode]).toEqual([false, "participant"]);
    expect(olga.q<HTMLSelectElement>("[part=room-mode]").value).toBe("open");
    // The attribute switches the face without reconnecting.
    const sockets = gw.sockets.length;
    plain.el.mode = "organizer";
    expect(moderationShown(plain)).toBe(true);
    plain.el.setAttribute("mode", "participant");
    expect(moderationShown(plain)).toBe(false);
    expect(gw.sockets.length).toBe(sockets);
  });

  it("offers mute, mute 15 min and remove on others' messages only, and an organizer's click mutes live", async () => {
    const gw = new FakeGateway();
    gw.store.publish("pat", "p1", "hi from pat");
    gw.store.publish("olga", "o1", "hi from olga");
    const o = mount(gw, { token: "olga@organizer", before: (el) => el.setAttribute("mode", "organizer") });
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    const patRow = row(o, "hi from pat");
    const ownRow = row(o, "hi from olga");
    expect([...patRow.querySelectorAll("[part=moderate] button")].map((b) => b.textContent)).toEqual([
      DEFAULT_STRINGS.muteTimed,
      DEFAULT_STRINGS.muteIndefinitely,
      DEFAULT_STRINGS.removeUser,
    ]);
    expect(ownRow.querySelector("[part=moderate]")).toBeNull();
    // The participant sees no moderation on anyone's message.
    expect(p.all("[part=moderate]")).toEqual([]);

    (patRow.querySelector("[part=mute-timed]") as HTMLButtonElement).click();
    await vi.advanceTimersByTimeAsync(20);
    const until = gw.store.muted.get("pat") ?? 0n;
    expect(Number(until) - Date.now()).toBeGreaterThan(14 * 60_000);
    expect(view(p).disabled).toBe(true);
    expect(view(p).rule).toBe("MUTED");
    expect(view(p).notice).toMatch(/^An organizer muted you in this room until /);
    // The organizer's buttons now offer the way back.
    const unmute = row(o, "hi from pat").querySelector("[part=unmute]") as HTMLButtonElement;
    expect(unmute.textContent).toBe(DEFAULT_STRINGS.unmute);
    unmute.click();
    await vi.advanceTimersByTimeAsync(20);
    expect(view(p)).toEqual({ disabled: false, notice: null, rule: null });
    expect(row(o, "hi from pat").querySelector("[part=mute]")).not.toBeNull();
    expect(gw.store.actions.map((a) => ActionKind[a.kind])).toEqual(["MUTE", "UNMUTE"]);
    // Each action is read out once on each page, when its room event arrives.
    const lines = (x: Mounted) => [...x.announcer().children].map((c) => c.textContent);
    expect(lines(o)).toEqual(["olga: mute pat", "olga: unmute pat"]);
    expect(lines(p)).toEqual(["olga: mute pat", "olga: unmute pat"]);
  });

  it("tells a removed participant why the room went away, in words", async () => {
    const gw = new FakeGateway();
    const o = mount(gw, { token: "olga@organizer", before: (el) => el.setAttribute("mode", "organizer") });
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    await o.el.client?.removeUser("lobby", "pat");
    await vi.advanceTimersByTimeAsync(20);
    expect(p.status().textContent).toBe(DEFAULT_STRINGS.statusRoomRemoved);
    expect(p.el.dataset.error).toBe("PERMISSION_DENIED");
    expect(o.status().textContent).not.toBe(DEFAULT_STRINGS.statusRoomRemoved);
  });

  it("mutes until lifted, and removes only after a second click", async () => {
    const gw = new FakeGateway();
    gw.store.publish("pat", "p1", "hi from pat");
    const o = mount(gw, { token: "olga@organizer", before: (el) => el.setAttribute("mode", "organizer") });
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    (row(o, "hi from pat").querySelector("[part=mute]") as HTMLButtonElement).click();
    await vi.advanceTimersByTimeAsync(20);
    expect(gw.store.muted.get("pat")).toBe(0n);
    expect(view(p).notice).toBe(DEFAULT_STRINGS.cannotPostMuted);
    const remove = () => row(o, "hi from pat").querySelector("[part=remove-user]") as HTMLButtonElement;
    remove().click();
    await vi.advanceTimersByTimeAsync(20);
    expect(remove().textContent).toBe(DEFAULT_STRINGS.confirmRemove);
    expect(gw.store.actions.map((a) => ActionKind[a.kind])).toEqual(["MUTE"]);
    remove().click();
    await vi.advanceTimersByTimeAsync(20);
    expect(gw.store.actions.map((a) => ActionKind[a.kind])).toEqual(["MUTE", "REMOVE"]);
  });

  it("a refused moderation shows the server's reason under the message", async () => {
    const gw = new FakeGateway();
    gw.store.publish("pat", "p1", "hi from pat");
    const o = mount(gw, { token: "olga@organizer", before: (el) => el.setAttribute("mode", "organizer") });
    await vi.advanceTimersByTimeAsync(50);
    // The server no longer sees an organizer (the role changed meanwhile).
    const btn = row(o, "hi from pat").querySelector("[part=mute]") as HTMLButtonElement;
    gw.rejectModeration = true;
    btn.click();
    await vi.advanceTimersByTimeAsync(20);
    const err = row(o, "hi from pat").querySelector("[part=action-error]");
    expect(err?.textContent).toContain("PERMISSION_DENIED");
    expect(gw.store.actions).toEqual([]);
  });

  it("the room mode switch makes the room read-only for participants, live, and open again", async () => {
    const gw = new FakeGateway();
    const o = mount(gw, { token: "olga@organizer", before: (el) => el.setAttribute("mode", "organizer") });
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    expect(view(p)).toEqual({ disabled: false, notice: null, rule: null });
    const select = o.q<HTMLSelectElement>("[part=room-mode]");
    expect([...select.options].map((x) => x.textContent)).toEqual([DEFAULT_STRINGS.modeOpen, DEFAULT_STRINGS.modeAnnouncements, DEFAULT_STRINGS.modeClosed]);
    select.value = "announcements";
    select.dispatchEvent(new Event("change"));
    await vi.advanceTimersByTimeAsync(20);
    expect(gw.store.mode).toBe(RoomMode.ANNOUNCEMENTS);
    expect(view(p)).toEqual({ disabled: true, notice: DEFAULT_STRINGS.cannotPostAnnouncements, rule: "ANNOUNCEMENTS" });
    expect(view(o).disabled).toBe(false);
    expect(select.value).toBe("announcements");
    select.value = "closed";
    select.dispatchEvent(new Event("change"));
    await vi.advanceTimersByTimeAsync(20);
    expect(view(p)).toEqual({ disabled: true, notice: DEFAULT_STRINGS.cannotPostClosed, rule: "ROOM_CLOSED" });
    expect(view(o).notice).toBe(DEFAULT_STRINGS.cannotPostClosed);
    select.value = "open";
    select.dispatchEvent(new Event("change"));
    await vi.advanceTimersByTimeAsync(20);
    expect(view(p)).toEqual({ disabled: false, notice: null, rule: null });
    // The participant's element says what happened in its live region.
    expect(p.announcer().textContent).toContain("olga: set mode");
  });

  it("a participant sees the switch follow the room when another organizer changes it", async () => {
    const gw = new FakeGateway();
    const o = mount(gw, { token: "olga@organizer", before: (el) => el.setAttribute("mode", "organizer") });
    await vi.advanceTimersByTimeAsync(50);
    gw.store.mode = RoomMode.CLOSED;
    gw.store.act({ kind: ActionKind.SET_MODE, mode: RoomMode.CLOSED });
    await vi.advanceTimersByTimeAsync(20);
    expect(o.q<HTMLSelectElement>("[part=room-mode]").value).toBe("closed");
  });

  it("a refused mode change shows the reason and the switch goes back", async () => {
    const gw = new FakeGateway();
    const o = mount(gw, { token: "olga@organizer", before: (el) => el.setAttribute("mode", "organizer") });
    await vi.advanceTimersByTimeAsync(50);
    gw.rejectModeration = true;
    const select = o.q<HTMLSelectElement>("[part=room-mode]");
    select.value = "closed";
    select.dispatchEvent(new Event("change"));
    await vi.advanceTimersByTimeAsync(20);
    const err = o.q<HTMLElement>("[part=moderation-error]");
    expect(err.hidden).toBe(false);
    expect(err.textContent).toContain("ORGANIZER_ONLY");
    expect(select.value).toBe("open");
    expect(select.disabled).toBe(false);
  });

  it("shows who is here and who is typing", async () => {
    const gw = new FakeGateway();
    const o = mount(gw, { token: "olga@organizer" });
    await vi.advanceTimersByTimeAsync(50);
    const presence = o.q<HTMLElement>("[part=presence]");
    expect([presence.hidden, presence.textContent]).toEqual([false, "1 here: olga"]);
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    expect(presence.textContent).toBe("2 here: olga, pat");
    expect(presence.dataset.count).toBe("2");

    const typing = o.q<HTMLElement>("[part=typing]");
    expect([typing.textContent, typing.hasAttribute("data-active")]).toEqual(["", false]);
    p.input().value = "hel";
    p.input().dispatchEvent(new Event("input"));
    await vi.advanceTimersByTimeAsync(10);
    expect([typing.textContent, typing.hasAttribute("data-active")]).toEqual(["pat is typing…", true]);
    await vi.advanceTimersByTimeAsync(TYPING_SHOWN_MS);
    expect(typing.textContent).toBe("");
    // Clearing the box is not typing.
    const before = gw.received.filter((f) => f.kind.case === "typing").length;
    await vi.advanceTimersByTimeAsync(5000);
    p.input().value = "   ";
    p.input().dispatchEvent(new Event("input"));
    expect(gw.received.filter((f) => f.kind.case === "typing").length).toBe(before);
  });

  it("words presence and typing through the replaceable strings", async () => {
    const gw = new FakeGateway();
    const o = mount(gw, { token: "olga@organizer", before: (el) => (el.strings = { presence: (n) => `${n} ici`, typing: (names) => `${names.join("+")} écrit` }) });
    await vi.advanceTimersByTimeAsync(50);
    expect(o.q("[part=presence]").textContent).toBe("1 ici");
    gw.last.push({ kind: { case: "typing", value: { room: "lobby", user: { id: "x", displayName: "Xu" } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(o.q("[part=typing]").textContent).toBe("Xu écrit");
    for (const id of ["y", "z"]) gw.last.push({ kind: { case: "typing", value: { room: "lobby", user: { id, displayName: id } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(o.q("[part=typing]").textContent).toBe(" écrit"); // more than two: no names
  });

  it("puts the new-messages divider above the first message of others after the last one read", async () => {
    const gw = new FakeGateway();
    for (const [who, body] of [["pat", "one"], ["pat", "two"], ["olga", "mine"], ["pat", "three"]] as const) gw.store.publish(who, body, body);
    gw.store.readBy.set("olga", { seq: 2n, rev: 2n });
    const o = mount(gw, { token: "olga@organizer" });
    await vi.advanceTimersByTimeAsync(50);
    const lis = o.all<HTMLElement>("[part=messages] > li:not(.day)");
    const at = lis.findIndex((li) => li.getAttribute("part") === "unread-divider");
    expect(at).toBeGreaterThan(0);
    expect(lis[at]?.textContent).toBe(DEFAULT_STRINGS.newMessages);
    expect(lis[at + 1]?.querySelector("[part=body]")?.textContent).toBe("three");
  });

  it("shows no divider for a reader who never read the room, nor when everything is read", async () => {
    const gw = new FakeGateway();
    gw.store.publish("pat", "a", "a");
    const o = mount(gw, { token: "olga@organizer" });
    await vi.advanceTimersByTimeAsync(50);
    expect(o.all("[part=unread-divider]")).toEqual([]);
    o.el.remove();
    gw.store.readBy.set("olga", { seq: 1n, rev: 1n });
    const again = mount(gw, { token: "olga@organizer" });
    await vi.advanceTimersByTimeAsync(50);
    expect(again.all("[part=unread-divider]")).toEqual([]);
  });

  it("marks messages read as they come into view, once the reader rests", async () => {
    const gw = new FakeGateway();
    for (const b of ["a", "b", "c"]) gw.store.publish("pat", b, b);
    const o = mount(gw, { token: "olga@organizer" });
    await vi.advanceTimersByTimeAsync(50);
    const obs = FakeObserver.all.at(-1) as FakeObserver;
    expect(obs.watched.size).toBe(3);
    obs.hide([row(o, "c")]); // leaving the screen is not reading
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS + 10);
    expect(gw.requests.filter((r) => r.endsWith("/read"))).toHaveLength(0);
    obs.show([row(o, "a"), row(o, "b")]);
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS + 10);
    expect(gw.store.readBy.get("olga")).toEqual({ seq: 2n, rev: 2n });
    expect(gw.requests.filter((r) => r.endsWith("/read"))).toHaveLength(1);
    obs.show([row(o, "a")]); // already read: no call
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS + 10);
    expect(gw.requests.filter((r) => r.endsWith("/read"))).toHaveLength(1);
    // Nothing is marked while the page is hidden.
    const vis = vi.spyOn(document, "visibilityState", "get").mockReturnValue("hidden");
    obs.show([row(o, "c")]);
    await vi.advanceTimersByTimeAsync(MARK_READ_DEBOUNCE_MS + 10);
    expect(gw.store.readBy.get("olga")?.seq).toBe(2n);
    vis.mockRestore();
    // Shown again: the rows are looked at afresh (observed anew).
    obs.watched.clear();
    document.dispatchEvent(new Event("visibilitychange"));
    expect(obs.watched.size).toBe(3);
    o.el.remove();
    expect(obs.watched.size).toBe(0);
  });
});
