// @vitest-environment node
import { describe, expect, it } from "vitest";
import { HistoryClient, HttpError } from "../src/history.js";
import { FakeGateway } from "./fakes.js";

describe("history (REST)", () => {
  it("sends the bearer token and the cursor as query parameters", async () => {
    const calls: Array<{ url: string; auth: string | null }> = [];
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "x");
    const h = new HistoryClient({
      baseUrl: "http://gw.test/",
      getToken: () => "tok",
      fetch: async (url, init) => {
        calls.push({ url, auth: new Headers(init?.headers).get("authorization") });
        return gw.fetch(url, init);
      },
    });
    const page = await h.latest("lobby", 20);
    expect(page.messages).toHaveLength(1);
    expect(page.room?.headRev).toBe(1n);
    await h.older("lobby", 5n, 10);
    await h.list("lobby", { afterRev: 7n });
    expect(calls.map((c) => c.url)).toEqual([
      "http://gw.test/v1/rooms/lobby/messages?limit=20",
      "http://gw.test/v1/rooms/lobby/messages?before=5&limit=10",
      "http://gw.test/v1/rooms/lobby/messages?after=7",
    ]);
    expect(calls.every((c) => c.auth === "Bearer tok")).toBe(true);
  });

  it("catches up over several pages in rev order", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 25; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    gw.store.edit(3n, "m3 edited");
    const h = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: gw.fetch });
    const r = await h.catchUp("lobby", 2n, 10);
    // rev > 2: seq 4..25 (revs 4..25), then seq 3 whose edit is rev 26.
    expect(r.messages.map((m) => Number(m.rev))).toEqual(Array.from({ length: 23 }, (_, i) => i + 4));
    expect(r.messages.map((m) => Number(m.seq))).toEqual([...Array.from({ length: 22 }, (_, i) => i + 4), 3]);
    expect(r.headRev).toBe(26n);
  });

  it("turns error bodies into HttpError with the parley code", async () => {
    const gw = new FakeGateway();
    const h = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: gw.fetch });
    const e = await h.latest("nope").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HttpError);
    expect((e as HttpError).status).toBe(404);
    expect((e as HttpError).code).toBe("ROOM_NOT_FOUND");
    expect((e as HttpError).transient).toBe(false);
    gw.refuse = true;
    const n = await h.latest("lobby").catch((x: unknown) => x);
    expect((n as HttpError).transient).toBe(true);
  });
});
