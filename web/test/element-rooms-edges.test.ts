// <parley-chat> in a moderated room, the details: its events, presence and
// typing wording, who the organizer's buttons think is muted, and the
// reasons the composer gives.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_MUTE_MS } from "../src/constants.js";
import { ActionKind, Role } from "../src/protocol.js";
import { DEFAULT_STRINGS } from "../src/strings.js";
import { FakeGateway } from "./fakes.js";
import { mount } from "./mount.js";

type Mounted = ReturnType<typeof mount>;
const row = (m: Mounted, body: string) => m.items().find((li) => li.querySelector("[part=body]")?.textContent === body) as HTMLElement;
const buttons = (m: Mounted, body: string) => [...row(m, body).querySelectorAll("[part=moderate] button")].map((b) => b.getAttribute("part"));
const organizer = (el: HTMLElement) => el.setAttribute("mode", "organizer");

describe("<parley-chat> in a moderated room, details", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("fires parley-access, parley-room-event, parley-presence and parley-typing with the client's detail", async () => {
    const gw = new FakeGateway();
    const fired: string[] = [];
    const p = mount(gw, {
      token: "pat",
      before: (el) => {
        el.addEventListener("parley-access", (e) => fired.push(`access ${e.detail.access.canPost}`));
        el.addEventListener("parley-room-event", (e) => fired.push(`room-event ${ActionKind[e.detail.action.kind]}`));
        el.addEventListener("parley-presence", (e) => fired.push(`presence ${e.detail.count}`));
        el.addEventListener("parley-typing", (e) => fired.push(`typing ${e.detail.users.length}`));
      },
    });
    await vi.advanceTimersByTimeAsync(50);
    gw.store.act({ kind: ActionKind.MUTE, targetUserId: "pat" });
    gw.last.push({ kind: { case: "typing", value: { room: "lobby", user: { id: "sam" } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(fired).toEqual(["access true", "presence 1", "access false", "room-event MUTE", "typing 1"]);
    expect(p.el.dataset.moderating).toBeUndefined();
  });

  it("shows only this room's live state when the app follows another room on the same client", async () => {
    const gw = new FakeGateway();
    gw.addRoom("stage");
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    p.el.client?.subscribe("stage");
    await vi.advanceTimersByTimeAsync(50);
    const presence = p.q("[part=presence]").textContent;
    gw.last.push({ kind: { case: "presence", value: { room: "stage", count: 9, users: [{ id: "x" }] } } });
    gw.last.push({ kind: { case: "typing", value: { room: "stage", user: { id: "x" } } } });
    gw.rooms.get("stage")?.act({ kind: ActionKind.MUTE, targetUserId: "pat" });
    await vi.advanceTimersByTimeAsync(10);
    expect(p.q("[part=presence]").textContent).toBe(presence);
    expect(p.q("[part=typing]").textContent).toBe("");
    expect(p.input().disabled).toBe(false);
    expect(p.announcer().textContent).toBe("");
  });

  it("names the first three who are here (the display name, else the id) and counts the rest; nobody: hidden", async () => {
    const gw = new FakeGateway();
    gw.autoPresence = false;
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    const el = p.q<HTMLElement>("[part=presence]");
    expect([el.hidden, el.textContent]).toEqual([true, ""]);
    const users = [{ id: "a", displayName: "Ann" }, { id: "b" }, { id: "c", displayName: "Cy" }, { id: "d", displayName: "Di" }];
    gw.last.push({ kind: { case: "presence", value: { room: "lobby", count: 5, users } } });
    await vi.advanceTimersByTimeAsync(10);
    expect([el.hidden, el.textContent]).toEqual([false, "5 here: Ann, b, Cy and 2 more"]);
    gw.last.push({ kind: { case: "presence", value: { room: "lobby", count: 0 } } });
    await vi.advanceTimersByTimeAsync(10);
    expect([el.hidden, el.textContent]).toEqual([true, ""]);
  });

  it("names two typists, not more", async () => {
    const gw = new FakeGateway();
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    for (const id of ["ann", "bob"]) gw.last.push({ kind: { case: "typing", value: { room: "lobby", user: { id, displayName: id } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(p.q("[part=typing]").textContent).toBe("ann and bob are typing…");
    expect(p.q<HTMLElement>("[part=typing]").dataset.active).toBe("");
  });

  it("reads out the actor's display name; another action on a muted user keeps the Unmute button", async () => {
    const gw = new FakeGateway();
    gw.store.publish("pat", "p1", "hi from pat");
    const o = mount(gw, { token: "olga@organizer", before: organizer });
    await vi.advanceTimersByTimeAsync(50);
    expect(o.el.dataset.moderating).toBe("");
    gw.store.act({ kind: ActionKind.MUTE, targetUserId: "pat", actor: { id: "u-981", displayName: "Dana Reyes" } });
    gw.store.act({ kind: ActionKind.REMOVE, targetUserId: "pat", actor: { id: "u-981" } });
    await vi.advanceTimersByTimeAsync(10);
    expect([...o.announcer().children].map((c) => c.textContent)).toEqual(["Dana Reyes: mute pat", "u-981: remove pat"]);
    expect(buttons(o, "hi from pat")).toEqual(["unmute", "remove-user"]);
  });

  it("a timed mute's Unmute button turns back into Mute once it ran out", async () => {
    const gw = new FakeGateway();
    gw.store.publish("pat", "p1", "hi from pat");
    const o = mount(gw, { token: "olga@organizer", before: organizer });
    await vi.advanceTimersByTimeAsync(50);
    (row(o, "hi from pat").querySelector("[part=mute-timed]") as HTMLButtonElement).click();
    await vi.advanceTimersByTimeAsync(20);
    expect(buttons(o, "hi from pat")).toEqual(["unmute", "remove-user"]);
    await vi.advanceTimersByTimeAsync(DEFAULT_MUTE_MS - 1000);
    o.el.mode = "organizer"; // any re-render
    o.el.setAttribute("mode", "participant");
    o.el.setAttribute("mode", "organizer");
    expect(buttons(o, "hi from pat")).toEqual(["unmute", "remove-user"]);
    await vi.advanceTimersByTimeAsync(2000);
    o.el.setAttribute("mode", "participant");
    o.el.setAttribute("mode", "organizer");
    expect(buttons(o, "hi from pat")).toEqual(["mute-timed", "mute", "remove-user"]);
  });

  it("says until when a timed mute lasts (hours and minutes), and clears the reason when it is lifted", async () => {
    const gw = new FakeGateway();
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    gw.store.muted.set("pat", BigInt(Date.now() + DEFAULT_MUTE_MS));
    gw.store.act({ kind: ActionKind.MUTE, targetUserId: "pat", untilMs: BigInt(Date.now() + DEFAULT_MUTE_MS) });
    await vi.advanceTimersByTimeAsync(10);
    const notice = p.q<HTMLElement>("[part=composer-notice]");
    expect(notice.textContent).toMatch(/until \d{1,2}:\d{2}\b/);
    expect(notice.textContent).not.toMatch(/\d:\d{2}:\d{2}/);
    gw.store.muted.delete("pat");
    gw.store.act({ kind: ActionKind.UNMUTE, targetUserId: "pat" });
    await vi.advanceTimersByTimeAsync(10);
    expect([notice.hidden, notice.textContent]).toEqual([true, ""]);
  });

  it("names any other rule the server gives (e.g. no role in the room)", async () => {
    const gw = new FakeGateway();
    gw.store.roles.set("pat", Role.UNSPECIFIED);
    const p = mount(gw, { token: "pat" });
    await vi.advanceTimersByTimeAsync(50);
    expect(p.q("[part=composer-notice]").textContent).toBe(DEFAULT_STRINGS.cannotPost("NOT_GRANTED"));
    expect(p.el.dataset.postRule).toBe("NOT_GRANTED");
  });

  it("a mute until lifted keeps its Unmute button however long it lasts", async () => {
    const gw = new FakeGateway();
    gw.store.publish("pat", "p1", "hi from pat");
    const o = mount(gw, { token: "olga@organizer", before: organizer });
    await vi.advanceTimersByTimeAsync(50);
    (row(o, "hi from pat").querySelector("[part=mute]") as HTMLButtonElement).click();
    await vi.advanceTimersByTimeAsync(DEFAULT_MUTE_MS * 10);
    o.el.setAttribute("mode", "participant");
    o.el.setAttribute("mode", "organizer");
    expect(buttons(o, "hi from pat")).toEqual(["unmute", "remove-user"]);
  });

  it("the mode switch is off while its request runs, and an earlier refusal is cleared by the next try", async () => {
    const gw = new FakeGateway();
    const o = mount(gw, { token: "olga@organizer", before: organizer });
    await vi.advanceTimersByTimeAsync(50);
    const select = o.q<HTMLSelectElement>("[part=room-mode]");
    const err = o.q<HTMLElement>("[part=moderation-error]");
    gw.rejectModeration = true;
    select.value = "closed";
    select.dispatchEvent(new Event("change"));
    expect(select.disabled).toBe(true);
    await vi.advanceTimersByTimeAsync(20);
    expect([err.hidden, select.disabled]).toEqual([false, false]);
    gw.rejectModeration = false;
    select.value = "announcements";
    select.dispatchEvent(new Event("change"));
    expect(err.hidden).toBe(true);
    await vi.advanceTimersByTimeAsync(20);
    expect([err.hidden, select.disabled, select.value]).toEqual([true, false, "announcements"]);
  });
});
