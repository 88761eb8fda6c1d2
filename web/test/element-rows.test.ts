// One message row in every shape it takes (own, others', edited, deleted,
// pending, being edited), the editor's ways out, and failed actions.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AuthorSchema, create } from "../src/protocol.js";
import { FakeGateway } from "./fakes.js";
import { mount } from "./mount.js";

/** A row as tag/part/class/data, its children likewise, and their text. */
function shape(li: Element): string[] {
  const out: string[] = [];
  const data = [...li.attributes]
    .filter((a) => a.name.startsWith("data-") && !["data-rev", "data-client-msg-id"].includes(a.name))
    .map((a) => `${a.name.slice(5).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())}=${a.value}`)
    .sort();
  out.push(`li part=${li.getAttribute("part")} ${data.join(" ")}`.trim());
  for (const e of li.querySelectorAll("*")) {
    const bits = [e.tagName.toLowerCase(), `part=${e.getAttribute("part")}`, `.${e.getAttribute("class") ?? ""}`];
    for (const a of ["role", "hidden", "type", "data-action", "data-confirm", "aria-invalid", "aria-label"]) {
      if (e.hasAttribute(a)) bits.push(`${a}=${e.getAttribute(a)}`);
    }
    if (e.children.length === 0 && e.tagName !== "TEXTAREA") bits.push(`"${e.textContent}"`);
    out.push(bits.join(" "));
  }
  return out;
}

const click = (li: Element | undefined, part: string) => (li?.querySelector(`[part=${part}]`) as HTMLButtonElement).click();
const submitEdit = (li: Element | undefined) =>
  li?.querySelector("[part=edit-form]")?.dispatchEvent(new Event("submit", { cancelable: true }));

describe("<parley-chat> rows", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date(2024, 2, 10, 12, 0));
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("has one shape per kind of message", async () => {
    const gw = new FakeGateway();
    gw.store.createdAtMs = new Date(2024, 2, 10, 9, 30).getTime();
    gw.store.publish("alice", "a1", "mine");
    gw.store.publish("bob", "b1", "his");
    gw.store.publish("bob", "b2", "gone");
    gw.store.edit(2n, "his, fixed");
    gw.store.remove(3n);
    const m = mount(gw, { before: (el) => (el.strings = { locale: "en-GB" }) });
    await vi.advanceTimersByTimeAsync(50);
    const [mine, his, gone] = m.items();
    expect(shape(mine as Element)).toEqual([
      "li part=message authorId=alice mine= pending=false seq=1",
      'span part=author .author "alice"',
      'time part=time .time "09:30"',
      'span part=body .body "mine"',
      "span part=actions .actions",
      'button part=edit . type=button data-action=edit "Edit"',
      'button part=delete . type=button data-action=delete "Delete"',
    ]);
    expect(mine?.querySelector("time")?.getAttribute("title")).toMatch(/^Sunday,? 10 March 2024(,| at) 09:30:00$/);
    expect(shape(his as Element)).toEqual([
      "li part=message authorId=bob edited= pending=false seq=2",
      'span part=author .author "bob"',
      'time part=time .time "09:30"',
      'span part=body .body "his, fixed"',
      'span part=edited .edited "(edited)"',
    ]);
    expect(shape(gone as Element)).toEqual([
      "li part=message authorId=bob deleted= pending=false seq=3",
      'span part=author .author "bob"',
      'time part=time .time "09:30"',
      'span part=body .body "message deleted"',
    ]);
    gw.deafClient = true;
    m.type("on its way");
    expect(shape(m.pendingItems()[0] as Element)).toEqual([
      "li part=message pending mine= pending=true",
      'span part=author .author "alice"',
      'span part=time .time "sending…"',
      'span part=body .body "on its way"',
    ]);
    // The editor, open on one's own message.
    click(mine, "edit");
    expect(shape(mine as Element).slice(3)).toEqual([
      'span part=body .body hidden= "mine"',
      "span part=actions .actions",
      'button part=edit . type=button data-action=edit "Edit"',
      'button part=delete . type=button data-action=delete "Delete"',
      "form part=edit-form .edit-form",
      "textarea part=edit-input . aria-label=Edit message",
      'button part=edit-save . type=submit "Save"',
      'button part=edit-cancel . type=button data-action=cancel-edit "Cancel"',
      'p part=edit-error .error role=alert hidden= ""',
    ]);
    expect(m.all("[part=day]").map((d) => d.textContent)).toEqual(["Today"]);
  });

  it("shows a message without an author, or with only an id", async () => {
    const gw = new FakeGateway();
    gw.store.publish("", "x1", "anonymous");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.last.push({ kind: { case: "event", value: { type: 1, message: { room: "lobby", seq: 2n, rev: 2n, body: "no author" } } } });
    gw.last.push({ kind: { case: "event", value: { type: 1, message: { room: "lobby", seq: 3n, rev: 3n, author: { id: "zed" } } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(m.items().map((li) => [li.querySelector("[part=author]")?.textContent, li.dataset.authorId])).toEqual([
      ["unknown", ""],
      ["unknown", ""],
      ["zed", "zed"],
    ]);
  });

  it("leaves the editor by Cancel, by Escape, or by saving the same text, without a request", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "mine");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const row = () => m.items()[0];
    const body = () => row()?.querySelector("[part=body]") as HTMLElement;
    click(row(), "edit");
    click(row(), "edit"); // a second click does not open a second editor
    expect(row()?.querySelectorAll("[part=edit-form]")).toHaveLength(1);
    click(row(), "edit-cancel");
    expect(row()?.querySelector("[part=edit-form]")).toBeNull();
    expect(body().hidden).toBe(false);
    click(row(), "edit");
    const input = row()?.querySelector("[part=edit-input]") as HTMLTextAreaElement;
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "a", bubbles: true }));
    expect(row()?.querySelector("[part=edit-form]")).not.toBeNull();
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", bubbles: true }));
    expect(row()?.querySelector("[part=edit-form]")).toBeNull();
    expect(body().hidden).toBe(false);
    click(row(), "edit");
    submitEdit(row());
    await vi.advanceTimersByTimeAsync(10);
    expect(row()?.querySelector("[part=edit-form]")).toBeNull();
    expect(gw.requests.filter((r) => r.startsWith("PATCH"))).toEqual([]);
    // Clicks elsewhere in the list do nothing.
    (row()?.querySelector("[part=body]") as HTMLElement).click();
    (m.q("[part=messages]") as HTMLElement).click();
    expect(row()?.querySelector("[part=edit-form]")).toBeNull();
  });

  it("keeps the editor open through other changes, shows a refused edit, and closes when the message is deleted", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "mine");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const row = () => m.items()[0];
    click(row(), "edit");
    const input = row()?.querySelector("[part=edit-input]") as HTMLTextAreaElement;
    input.value = "changed";
    gw.store.edit(1n, "edited elsewhere");
    await vi.advanceTimersByTimeAsync(10);
    expect(row()?.querySelector("[part=edit-input]")).toBe(input);
    expect((row()?.querySelector("[part=body]") as HTMLElement).hidden).toBe(true);
    // The server refuses (the user lost the right meanwhile).
    gw.store.get(1n)!.author = create(AuthorSchema, { id: "someone-else" });
    submitEdit(row());
    await vi.advanceTimersByTimeAsync(10);
    const err = row()?.querySelector("[part=edit-error]") as HTMLElement;
    expect(err.hidden).toBe(false);
    expect(err.textContent).toBe("That did not work (PERMISSION_DENIED): HTTP 403 PERMISSION_DENIED: only the author or an organizer.");
    expect(input.getAttribute("aria-invalid")).toBe("true");
    expect(input.value).toBe("changed");
    gw.store.remove(1n);
    await vi.advanceTimersByTimeAsync(10);
    expect(row()?.querySelector("[part=edit-form]")).toBeNull();
    expect((row()?.querySelector("[part=body]") as HTMLElement).hidden).toBe(false);
  });

  it("clears the editor's error once an edit goes through", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 5;
    gw.store.publish("alice", "a1", "mine");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const row = () => m.items()[0];
    click(row(), "edit");
    const input = row()?.querySelector("[part=edit-input]") as HTMLTextAreaElement;
    input.value = "far too long";
    submitEdit(row());
    expect((row()?.querySelector("[part=edit-error]") as HTMLElement).hidden).toBe(false);
    input.value = "ok";
    submitEdit(row());
    expect((row()?.querySelector("[part=edit-error]") as HTMLElement).hidden).toBe(true);
    expect(input.hasAttribute("aria-invalid")).toBe(false);
    await vi.advanceTimersByTimeAsync(10);
    expect(row()?.querySelector("[part=body]")?.textContent).toBe("ok");
  });

  it("shows a refused delete under the row, and asks again next time", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "mine");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const row = () => m.items()[0];
    gw.store.get(1n)!.author = create(AuthorSchema, { id: "someone-else" });
    click(row(), "delete");
    expect(row()?.querySelector("[part=delete]")?.hasAttribute("data-confirm")).toBe(true);
    click(row(), "delete");
    await vi.advanceTimersByTimeAsync(10);
    const err = row()?.querySelector("[part=action-error]") as HTMLElement;
    expect(err.getAttribute("role")).toBe("alert");
    expect(err.className).toBe("error action-error");
    expect(err.textContent).toContain("PERMISSION_DENIED");
    expect(row()?.querySelector("[part=delete]")?.textContent).toBe("Delete");
    expect(row()?.querySelector("[part=delete]")?.hasAttribute("data-confirm")).toBe(false);
    // Tried again and it works: the error goes.
    gw.store.get(1n)!.author = create(AuthorSchema, { id: "alice", displayName: "alice" });
    click(row(), "delete");
    click(row(), "delete");
    await vi.advanceTimersByTimeAsync(10);
    expect(row()?.querySelector("[part=action-error]")).toBeNull();
    expect(row()?.hasAttribute("data-deleted")).toBe(true);
  });

  it("relabels rows and separators when the strings or the day change", async () => {
    const gw = new FakeGateway();
    gw.store.createdAtMs = new Date(2024, 2, 10, 9, 30).getTime();
    gw.store.publish("alice", "a1", "mine");
    gw.store.publish("bob", "b1", "his");
    gw.store.edit(2n, "his!");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.deafClient = true;
    m.type("pending one");
    click(m.items()[0], "delete"); // armed
    m.el.strings = { edit: "Ändern", delete: "Löschen", confirmDelete: "Wirklich?", edited: "(bearbeitet)", sending: "sendet…", today: "Heute" };
    const [mine, his] = m.items();
    expect(mine?.querySelector("[part=edit]")?.textContent).toBe("Ändern");
    expect(mine?.querySelector("[part=delete]")?.textContent).toBe("Wirklich?");
    expect(his?.querySelector("[part=edited]")?.textContent).toBe("(bearbeitet)");
    expect(his?.querySelectorAll("[part=edited]")).toHaveLength(1);
    expect(m.pendingItems()[0]?.querySelector("[part=time]")?.textContent).toBe("sendet…");
    expect(m.all("[part=day]").map((d) => d.textContent)).toEqual(["Heute"]);
    vi.setSystemTime(new Date(2024, 2, 11, 8, 0));
    m.el.strings = {};
    expect(m.all("[part=day]").map((d) => d.textContent)).toEqual(["Yesterday"]);
    expect(m.items()[0]?.querySelector("[part=delete]")?.textContent).toBe("Delete?");
  });

  it("keeps separators right when older days are loaded before and a new day starts", async () => {
    const gw = new FakeGateway();
    const day = (d: number, h = 10) => new Date(2024, 2, d, h, 0).getTime();
    gw.store.createdAtMs = day(7);
    gw.store.publish("bob", "b1", "a");
    gw.store.createdAtMs = day(8);
    gw.store.publish("bob", "b2", "b");
    gw.store.createdAtMs = day(9);
    gw.store.publish("bob", "b3", "c");
    gw.store.createdAtMs = day(9, 11);
    gw.store.publish("bob", "b4", "d");
    const m = mount(gw, { before: (el) => el.setAttribute("history-limit", "2") });
    await vi.advanceTimersByTimeAsync(50);
    const rows = () => m.all<HTMLElement>("[part=messages] > li").map((li) => li.dataset.seq ?? `day ${li.dataset.day}`);
    expect(rows()).toEqual(["day 2024-3-9", "3", "4"]);
    m.older().click();
    await vi.advanceTimersByTimeAsync(10);
    expect(rows()).toEqual(["day 2024-3-7", "1", "day 2024-3-8", "2", "day 2024-3-9", "3", "4"]);
    gw.store.createdAtMs = day(10, 11);
    gw.store.publish("bob", "b5", "e");
    await vi.advanceTimersByTimeAsync(10);
    expect(rows()).toEqual(["day 2024-3-7", "1", "day 2024-3-8", "2", "day 2024-3-9", "3", "4", "day 2024-3-10", "5"]);
    expect(m.all("[part=day]").pop()?.textContent).toBe("Today");
  });
});
