// The message list on its own (no client, no gateway): what a reader sees
// when rows arrive out of order, days come and go, pending sends come and go
// and an edit is open while the message changes. Written for the mutants the
// element tests let through (docs/testing.md, "Web package").
import { afterEach, describe, expect, it } from "vitest";
import { MessageList, type MessageListHooks } from "../src/message-list.js";
import type { Pending } from "../src/outbox.js";
import { type Message, MessageSchema, create } from "../src/protocol.js";
import { mergeStrings } from "../src/strings.js";

const NOW = new Date(2024, 2, 10, 12, 0);
const day = (d: number, h = 9) => BigInt(new Date(2024, 2, d, h, 0).getTime());

function msg(seq: number, createdAtMs: bigint, body = `m${seq}`, extra: { rev?: bigint; editedAtMs?: bigint } = {}): Message {
  return create(MessageSchema, {
    room: "lobby",
    seq: BigInt(seq),
    rev: BigInt(seq),
    clientMsgId: `c${seq}`,
    author: { id: "bob", displayName: "Bob" },
    body,
    createdAtMs,
    ...extra,
  });
}

function pending(id: string, body = id): Pending {
  return { clientMsgId: id, room: "lobby", body, createdAtMs: 0, attempts: 0, requestId: 0n };
}

function setup(over: Partial<MessageListHooks> = {}) {
  const list = document.createElement("ol");
  const pendingList = document.createElement("ol");
  document.body.append(list, pendingList);
  const edits: Array<[bigint, string]> = [];
  const hooks: MessageListHooks = {
    strings: () => mergeStrings({}),
    now: () => NOW,
    isMine: () => true,
    canModify: (m) => !m.deleted,
    check: () => null,
    edit: async (seq, body) => {
      edits.push([seq, body]);
    },
    remove: async () => {},
    failure: (err) => `failed: ${String(err)}`,
    moderation: () => null, // a participant: no organizer controls
    moderate: async () => {},
    ...over,
  };
  const rows = new MessageList(list, pendingList, hooks);
  /** The log as a reader sees it, top to bottom: "day:<text>" or the body. */
  const seen = () =>
    [...list.children].map((li) =>
      li.classList.contains("day") ? `day:${li.textContent}` : (li.querySelector(".body")?.textContent ?? ""),
    );
  return { list, pendingList, rows, seen, edits };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe("message list", () => {
  afterEach(() => {
    document.body.replaceChildren();
  });

  it("puts a message that arrives late between its neighbours, under its day's heading", () => {
    const { rows, seen } = setup();
    rows.upsert(msg(1, day(8)));
    rows.upsert(msg(4, day(9)));
    rows.renderDays();
    // seq 2 (day 8) and 3 (day 9) arrive after 4: 3 goes above 4 but under
    // day 9's heading, 2 at the end of day 8.
    rows.upsert(msg(3, day(9, 8)));
    rows.upsert(msg(2, day(8, 10)));
    rows.renderDays();
    expect(seen()).toEqual(["day:Friday, March 8", "m1", "m2", "day:Yesterday", "m3", "m4"]);
    // a message after the last one goes last
    rows.upsert(msg(5, day(9, 10)));
    rows.renderDays();
    expect(seen().at(-1)).toBe("m5");
  });

  it("puts a late message between two of its day, also before the days are laid out", () => {
    const { rows, seen } = setup();
    // no renderDays() yet: the rows have no headings above them
    rows.upsert(msg(3, day(10, 11)));
    rows.upsert(msg(1, day(10, 9)));
    rows.upsert(msg(2, day(10, 10)));
    expect(seen()).toEqual(["m1", "m2", "m3"]);
    rows.renderDays();
    rows.upsert(msg(5, day(10, 13)));
    rows.upsert(msg(4, day(10, 12)));
    expect(seen()).toEqual(["day:Today", "m1", "m2", "m3", "m4", "m5"]);
  });

  it("keeps one heading per day: it moves up to an older message of its day and goes with the day's last message", () => {
    const { rows, seen, list } = setup();
    rows.upsert(msg(5, day(9)));
    rows.upsert(msg(6, day(9, 10)));
    rows.renderDays();
    expect(seen()).toEqual(["day:Yesterday", "m5", "m6"]);
    // an older message of the same day (scrolling back): one heading, above it
    rows.upsert(msg(4, day(9, 8)));
    rows.renderDays();
    expect(seen()).toEqual(["day:Yesterday", "m4", "m5", "m6"]);
    expect(list.querySelectorAll("li.day")).toHaveLength(1);
    // a day whose messages are all forgotten loses its heading
    rows.upsert(msg(7, day(10)));
    rows.renderDays();
    rows.remove([4n, 5n, 6n]);
    rows.renderDays();
    expect(seen()).toEqual(["day:Today", "m7"]);
  });

  it("keeps the same heading element for a day, renamed when its name changes", () => {
    let now = NOW;
    const { rows, list } = setup({ now: () => now });
    rows.upsert(msg(1, day(10)));
    rows.renderDays();
    const heading = list.querySelector("li.day");
    expect(heading?.textContent).toBe("Today");
    now = new Date(2024, 2, 11, 8, 0);
    rows.renderDays();
    // the same node (a screen reader's place is kept), with its new name
    expect(list.querySelector("li.day")).toBe(heading);
    expect(heading?.textContent).toBe("Yesterday");
  });

  it("forgets only rows it has, and keeps order for the ones that stay", () => {
    const { rows, seen } = setup();
    for (const s of [1, 2, 3]) rows.upsert(msg(s, day(10, 8 + s)));
    rows.remove([9n, 2n]);
    expect(rows.size).toBe(2);
    rows.upsert(msg(2, day(10, 10), "back"));
    rows.renderDays();
    expect(seen()).toEqual(["day:Today", "m1", "back", "m3"]);
  });

  it("shows the pending list only while it holds a send, once per send", () => {
    const { rows, pendingList } = setup();
    expect(pendingList.hidden).toBe(true);
    rows.addPending(pending("a"), "me");
    rows.addPending(pending("a"), "me");
    rows.addPending(pending("b"), "me");
    expect(rows.pendingCount).toBe(2);
    expect(pendingList.children).toHaveLength(2);
    expect(pendingList.hidden).toBe(false);
    rows.removePending("a");
    rows.removePending("nope");
    expect(pendingList.hidden).toBe(false);
    rows.removePending("b");
    expect(rows.pendingCount).toBe(0);
    expect(pendingList.hidden).toBe(true);
  });

  it("relabels pending sends when the strings change", () => {
    let strings = mergeStrings({});
    const { rows, pendingList } = setup({ strings: () => strings });
    rows.addPending(pending("a", "hello"), "me");
    strings = mergeStrings({ sending: "envoi…" });
    rows.refresh();
    const li = pendingList.children[0] as HTMLElement;
    expect(li.querySelector(".time")?.textContent).toBe("envoi…");
    expect(li.querySelector(".body")?.textContent).toBe("hello");
    expect(li.querySelector(".author")?.textContent).toBe("me");
  });

  it("keeps the body hidden under an open editor while the message changes, and shows it again when closed", async () => {
    const { rows, list, edits } = setup();
    rows.upsert(msg(1, day(10)));
    const li = list.querySelector("li[data-seq='1']") as HTMLElement;
    const body = () => li.querySelector(".body") as HTMLElement;
    (li.querySelector("[data-action=edit]") as HTMLButtonElement).click();
    expect(body().hidden).toBe(true);
    // someone else's edit arrives while ours is open: the editor stays, the body stays hidden
    rows.upsert(msg(1, day(10), "changed", { rev: 2n, editedAtMs: 1n }));
    expect(li.querySelector("textarea")).not.toBeNull();
    expect(body().hidden).toBe(true);
    (li.querySelector("[data-action=cancel-edit]") as HTMLButtonElement).click();
    expect(li.querySelector("textarea")).toBeNull();
    expect(body().hidden).toBe(false);
    expect(body().textContent).toBe("changed");
    expect(edits).toEqual([]);
  });

  it("closes the editor after a save, but leaves a newer editor of the same row alone", async () => {
    let release: () => void = () => {};
    const { rows, list, edits } = setup({
      edit: (seq, body) => {
        edits.push([seq, body]);
        return new Promise<void>((r) => {
          release = r;
        });
      },
    });
    rows.upsert(msg(1, day(10)));
    const li = list.querySelector("li[data-seq='1']") as HTMLElement;
    const open = () => (li.querySelector("[data-action=edit]") as HTMLButtonElement).click();
    open();
    (li.querySelector("textarea") as HTMLTextAreaElement).value = "first";
    li.querySelector("form")?.dispatchEvent(new Event("submit", { cancelable: true }));
    expect(edits).toEqual([[1n, "first"]]);
    // the user cancels and opens a new editor before the save answers
    (li.querySelector("[data-action=cancel-edit]") as HTMLButtonElement).click();
    open();
    const second = li.querySelector("textarea") as HTMLTextAreaElement;
    second.value = "typing on";
    release();
    await flush();
    // the new editor, and what is typed in it, are still there
    expect(li.querySelector("textarea")).toBe(second);
    expect(second.value).toBe("typing on");
  });

  it("shows a refused save in the editor, but not in a newer editor of the same row", async () => {
    let reject: (e: unknown) => void = () => {};
    const { rows, list } = setup({
      edit: () =>
        new Promise<void>((_, rej) => {
          reject = rej;
        }),
    });
    rows.upsert(msg(1, day(10)));
    const li = list.querySelector("li[data-seq='1']") as HTMLElement;
    const open = () => (li.querySelector("[data-action=edit]") as HTMLButtonElement).click();
    open();
    (li.querySelector("textarea") as HTMLTextAreaElement).value = "first";
    li.querySelector("form")?.dispatchEvent(new Event("submit", { cancelable: true }));
    (li.querySelector("[data-action=cancel-edit]") as HTMLButtonElement).click();
    open();
    reject(new Error("nope"));
    await flush();
    const error = li.querySelector("[part=edit-error]") as HTMLElement;
    expect(error.hidden).toBe(true);
    expect(error.textContent).toBe("");
    expect(li.querySelector("textarea")?.getAttribute("aria-invalid")).toBeNull();
  });

  it("does nothing for a click outside a button, or on a button without an action", () => {
    const removed: bigint[] = [];
    const { rows, list } = setup({
      remove: async (seq) => {
        removed.push(seq);
      },
    });
    rows.upsert(msg(1, day(10)));
    const li = list.querySelector("li[data-seq='1']") as HTMLElement;
    (li.querySelector(".body") as HTMLElement).click();
    const stray = document.createElement("button");
    li.append(stray);
    stray.click();
    stray.click();
    // a click on the list itself, outside any row
    list.click();
    expect(li.querySelector("textarea")).toBeNull();
    expect(li.querySelector("[data-action=delete]")?.hasAttribute("data-confirm")).toBe(false);
    expect(removed).toEqual([]);
  });
});
