// How messages are shown: bodies as text (never HTML), safe links, dates and
// day separators, edit/delete controls for what the user may change, and a
// live region that announces new messages.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeGateway } from "./fakes.js";
import { mount } from "./mount.js";

const body = (li: Element | undefined) => li?.querySelector("[part~=body]") as HTMLElement;

describe("<parley-chat> messages", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    document.body.replaceChildren();
    vi.useRealTimers();
  });

  it("shows markup in a body as text: no element is created from it", async () => {
    const gw = new FakeGateway();
    const nasty = [
      `<img src=x onerror="window.__pwned=1">`,
      `<script>window.__pwned=2</script>`,
      `<a href="javascript:alert(1)">click</a>`,
      `<b>bold</b> &amp; <svg onload=alert(1)>`,
    ];
    nasty.forEach((b, i) => gw.store.publish("mallory", `x${i}`, b));
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.store.publish("mallory", "live", `<iframe src="https://example.org/"></iframe>`);
    await vi.advanceTimersByTimeAsync(10);
    const rows = m.items();
    expect(rows.map((li) => body(li).textContent)).toEqual([...nasty, `<iframe src="https://example.org/"></iframe>`]);
    for (const li of rows) {
      expect(body(li).querySelector("img, script, svg, iframe, b")).toBeNull();
      // Text nodes inside a body, and at most a safe link to an http(s) URL.
      for (const e of body(li).querySelectorAll("*")) {
        expect(e.tagName).toBe("A");
        expect(e.getAttribute("href")).toMatch(/^https?:\/\//);
      }
    }
    expect(rows.slice(0, 4).every((li) => [...body(li).childNodes].every((n) => n.nodeType === Node.TEXT_NODE))).toBe(true);
    expect(m.root.querySelector("img, script, svg, iframe")).toBeNull();
    expect((window as unknown as { __pwned?: number }).__pwned).toBeUndefined();
    // A pending send is text too.
    gw.deafClient = true;
    m.type(`<img src=y onerror="window.__pwned=3">`);
    expect(m.pendingItems()).toHaveLength(1);
    expect(m.root.querySelector("img")).toBeNull();
  });

  it("makes http(s) links clickable, safely, and nothing else", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "see https://example.org/a?b=1&c=2. or (http://example.org/x) but not javascript:alert(1) nor ftp://example.org/f");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const b = body(m.items()[0]);
    const links = [...b.querySelectorAll("a")];
    expect(links.map((a) => a.getAttribute("href"))).toEqual(["https://example.org/a?b=1&c=2", "http://example.org/x"]);
    for (const a of links) {
      expect(a.getAttribute("rel")).toBe("noopener noreferrer");
      expect(a.getAttribute("target")).toBe("_blank");
      expect(a.getAttribute("part")).toBe("link");
    }
    expect(links.map((a) => a.textContent)).toEqual(["https://example.org/a?b=1&c=2", "http://example.org/x"]);
    // The text reads exactly as written.
    expect(b.textContent).toBe("see https://example.org/a?b=1&c=2. or (http://example.org/x) but not javascript:alert(1) nor ftp://example.org/f");
  });

  it("shows the time for today, the date otherwise, the full date on hover, and day separators", async () => {
    vi.setSystemTime(new Date(2024, 2, 10, 12, 0));
    const gw = new FakeGateway();
    gw.store.createdAtMs = new Date(2023, 11, 31, 23, 30).getTime();
    gw.store.publish("bob", "b1", "last year");
    gw.store.createdAtMs = new Date(2024, 2, 8, 9, 5).getTime();
    gw.store.publish("bob", "b2", "friday");
    gw.store.publish("bob", "b3", "friday again");
    gw.store.createdAtMs = new Date(2024, 2, 10, 11, 0).getTime();
    gw.store.publish("bob", "b4", "today");
    const m = mount(gw, { before: (el) => (el.strings = { locale: "en-GB" }) });
    await vi.advanceTimersByTimeAsync(50);
    const times = m.items().map((li) => li.querySelector("time") as HTMLTimeElement);
    expect(times.map((t) => t.textContent)).toEqual(["31 Dec 2023, 23:30", "8 Mar, 09:05", "8 Mar, 09:05", "11:00"]);
    expect(times[3]?.dateTime).toBe(new Date(2024, 2, 10, 11, 0).toISOString());
    // The full date, in the locale's own words (ICU versions differ in punctuation).
    expect(times[1]?.title).toMatch(/^Friday,? 8 March 2024(,| at) 09:05:00$/);
    // One separator before each day's first message, in order.
    const rows = m.all<HTMLElement>("[part=messages] > li");
    expect(rows.map((li) => (li.dataset.seq ? `#${li.dataset.seq}` : li.textContent?.replace(",", "")))).toEqual([
      "Sunday 31 December 2023",
      "#1",
      "Friday 8 March",
      "#2",
      "#3",
      "Today",
      "#4",
    ]);
    expect(m.all("[part=day]").every((d) => d.getAttribute("role") === "separator")).toBe(true);
  });

  it("offers edit and delete on the user's own messages only", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "mine");
    gw.store.publish("bob", "b1", "bob's");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const [mine, bobs] = m.items();
    expect(mine?.querySelector("[part=edit]")).not.toBeNull();
    expect(mine?.querySelector("[part=delete]")).not.toBeNull();
    expect(bobs?.querySelector("[part=edit]")).toBeNull();
    expect(bobs?.querySelector("[part=delete]")).toBeNull();

    // Edit in place.
    (mine?.querySelector("[part=edit]") as HTMLButtonElement).click();
    const editor = mine?.querySelector("[part=edit-input]") as HTMLTextAreaElement;
    expect(editor.value).toBe("mine");
    editor.value = "mine, fixed";
    (mine?.querySelector("[part=edit-form]") as HTMLFormElement).dispatchEvent(new Event("submit", { cancelable: true }));
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.get(1n)?.body).toBe("mine, fixed");
    expect(body(m.items()[0]).textContent).toBe("mine, fixed");
    expect(m.items()[0]?.hasAttribute("data-edited")).toBe(true);
    expect(m.items()[0]?.querySelector("[part=edit-input]")).toBeNull();

    // Delete asks once more before it deletes.
    const del = () => m.items()[0]?.querySelector("[part=delete]") as HTMLButtonElement;
    del().click();
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.get(1n)?.deleted).toBe(false);
    expect(del().textContent).toBe("Delete?");
    del().click();
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.get(1n)?.deleted).toBe(true);
    expect(m.items()[0]?.hasAttribute("data-deleted")).toBe(true);
    expect(m.items()[0]?.querySelector("[part=edit], [part=delete]")).toBeNull();
  });

  it("keeps an edit that is too long open, with the reason", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 10;
    gw.store.publish("alice", "a1", "short");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const row = m.items()[0] as HTMLElement;
    (row.querySelector("[part=edit]") as HTMLButtonElement).click();
    const editor = row.querySelector("[part=edit-input]") as HTMLTextAreaElement;
    editor.value = "much too long now";
    (row.querySelector("[part=edit-form]") as HTMLFormElement).dispatchEvent(new Event("submit", { cancelable: true }));
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.get(1n)?.body).toBe("short");
    expect(row.querySelector("[part=edit-input]")).toBe(editor);
    expect(editor.value).toBe("much too long now");
    expect(row.querySelector("[part=edit-error]")?.textContent).toContain("10");
  });

  it("offers an organizer edit and delete on every message", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "spam");
    gw.store.publish("carol", "c1", "hello");
    const m = mount(gw, { token: "olga@organizer" });
    await vi.advanceTimersByTimeAsync(50);
    expect(m.items().map((li) => li.querySelector("[part=delete]") !== null)).toEqual([true, true]);
    const del = () => m.items()[0]?.querySelector("[part=delete]") as HTMLButtonElement;
    del().click();
    del().click();
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.get(1n)?.deleted).toBe(true);
  });

  it("announces new messages in a live region, not the history or one's own", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "old news");
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    const live = m.announcer();
    expect(live.getAttribute("aria-live")).toBe("polite");
    expect(live.textContent).toBe("");
    gw.store.publish("bob", "b2", "fresh news");
    await vi.advanceTimersByTimeAsync(10);
    m.type("my own words");
    await vi.advanceTimersByTimeAsync(10);
    expect(live.textContent).toContain("bob: fresh news");
    expect(live.textContent).not.toContain("old news");
    expect(live.textContent).not.toContain("my own words");
  });

  it("keeps the empty pending list out of the accessibility tree", async () => {
    const gw = new FakeGateway();
    const m = mount(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(m.pendingList().hidden).toBe(true);
    gw.deafClient = true;
    m.type("waiting");
    expect(m.pendingList().hidden).toBe(false);
    await vi.advanceTimersByTimeAsync(11_000); // the dead link is noticed
    gw.deafClient = false;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(m.pendingItems()).toHaveLength(0);
    expect(m.pendingList().hidden).toBe(true);
  });
});
