// @vitest-environment node
import { describe, expect, it, vi } from "vitest";
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

  it("words its errors and knows which are worth retrying", () => {
    const e = new HttpError(404, "ROOM_NOT_FOUND", "no room");
    expect(e.name).toBe("HttpError");
    expect(e.message).toBe("HTTP 404 ROOM_NOT_FOUND: no room");
    expect(new HttpError(0, "NETWORK", "").message).toBe("HTTP 0 NETWORK");
    const transient = (status: number) => new HttpError(status, "X", "").transient;
    expect([0, 408, 429, 500, 503, 599].map(transient)).toEqual([true, true, true, true, true, true]);
    expect([200, 400, 401, 403, 404, 409, 428, 499].map(transient)).toEqual([false, false, false, false, false, false, false, false]);
  });

  it("reads error bodies that are not parley's, and refuses an answer that is not an object", async () => {
    const answer = (status: number, text: string) => async () =>
      ({ ok: status < 300, status, text: async () => text }) as unknown as Response;
    const h = (f: ReturnType<typeof answer>) => new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: f });
    const plain = await h(answer(502, `Bad Gateway ${"x".repeat(300)}`)).latest("lobby").catch((x: unknown) => x);
    expect(plain).toMatchObject({ status: 502, code: "HTTP_ERROR" });
    expect((plain as HttpError).message).toBe(`HTTP 502 HTTP_ERROR: Bad Gateway ${"x".repeat(200 - 12)}`);
    const odd = await h(answer(400, JSON.stringify({ code: 7, detail: ["x"] }))).latest("lobby").catch((x: unknown) => x);
    expect(odd).toMatchObject({ status: 400, code: "HTTP_ERROR", message: 'HTTP 400 HTTP_ERROR: {"code":7,"detail":["x"]}' });
    const detail = await h(answer(403, JSON.stringify({ code: "PERMISSION_DENIED", detail: "no" }))).latest("x").catch((x: unknown) => x);
    expect((detail as HttpError).message).toBe("HTTP 403 PERMISSION_DENIED: no");
    for (const text of ["", "42", '"text"', "null", "not json"]) {
      const e = await h(answer(200, text)).latest("lobby").catch((x: unknown) => x);
      expect(e, text).toMatchObject({ status: 200, code: "MALFORMED", message: "HTTP 200 MALFORMED: response is not a JSON object" });
    }
    // Fields it does not know (a newer server) are ignored.
    const newer = await h(answer(200, JSON.stringify({ messages: [], room: { name: "lobby", headRev: "3", future: 1 }, extra: true }))).latest("lobby");
    expect(newer.room?.headRev).toBe(3n);
  });

  it("sends JSON with the edit, nothing with the others, and never from the cache", async () => {
    const calls: Array<{ method: string; url: string; type: string | null; body: unknown; cache: unknown; signal: boolean }> = [];
    const gw = new FakeGateway();
    gw.store.publish("t", "c1", "x");
    const h = new HistoryClient({
      baseUrl: "http://gw.test/chat", // a gateway behind a path prefix (with or without the last slash)
      getToken: async () => "t",
      fetch: async (url, init) => {
        const headers = new Headers(init?.headers);
        calls.push({
          method: init?.method ?? "",
          url,
          type: headers.get("content-type"),
          body: init?.body,
          cache: init?.cache,
          signal: init?.signal instanceof AbortSignal,
        });
        expect(headers.get("accept")).toBe("application/json");
        return gw.fetch(url.replace("/chat", ""), init);
      },
    });
    const edited = await h.edit("lobby", 1n, "y");
    expect(edited.body).toBe("y");
    const deleted = await h.remove("lobby", 1n);
    expect(deleted.deleted).toBe(true);
    await h.latest("lobby");
    expect(calls).toEqual([
      { method: "PATCH", url: "http://gw.test/chat/v1/rooms/lobby/messages/1", type: "application/json", body: '{"body":"y"}', cache: "no-store", signal: true },
      { method: "DELETE", url: "http://gw.test/chat/v1/rooms/lobby/messages/1", type: null, body: undefined, cache: "no-store", signal: true },
      { method: "GET", url: "http://gw.test/chat/v1/rooms/lobby/messages?limit=50", type: null, body: undefined, cache: "no-store", signal: true },
    ]);
  });

  it("gives up on a request with no answer after 10 s by default, and leaves no timer", async () => {
    vi.useFakeTimers();
    try {
      let aborted = false;
      const h = new HistoryClient({
        baseUrl: "http://gw.test",
        getToken: () => "t",
        fetch: (_url, init) =>
          new Promise<Response>((_resolve, reject) => {
            init?.signal?.addEventListener("abort", () => {
              aborted = true;
              reject(new Error("aborted"));
            });
          }),
      });
      const p = h.latest("lobby").catch((x: unknown) => x);
      await vi.advanceTimersByTimeAsync(9999);
      expect(aborted).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      expect(aborted).toBe(true);
      expect(await p).toMatchObject({ status: 0, code: "NETWORK", message: "HTTP 0 NETWORK: aborted" });
      const gw = new FakeGateway();
      const quick = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: gw.fetch, timeoutMs: 50 });
      await quick.latest("lobby");
      expect(vi.getTimerCount()).toBe(0);
      const thrower = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: () => Promise.reject("down") });
      expect(await thrower.latest("lobby").catch((x: unknown) => x)).toMatchObject({ code: "NETWORK", message: "HTTP 0 NETWORK: down" });
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("needs a fetch implementation", async () => {
    const saved = globalThis.fetch;
    try {
      (globalThis as { fetch?: unknown }).fetch = undefined;
      const h = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t" });
      await expect(h.latest("lobby")).rejects.toThrow("parley: no fetch implementation available");
      const gw = new FakeGateway();
      (globalThis as { fetch?: unknown }).fetch = gw.fetch;
      expect((await h.latest("lobby")).room?.name).toBe("lobby");
    } finally {
      globalThis.fetch = saved;
    }
  });

  it("catch-up: stops at a page that makes no progress, and reports the room of the last page", async () => {
    const pages = [
      { messages: [{ room: "lobby", seq: "1", rev: "5" }], hasMore: true, room: { name: "lobby", headRev: "9", maxBodyBytes: 100 } },
      { messages: [], hasMore: true, room: { name: "lobby", headRev: "9", maxBodyBytes: 100 } },
    ];
    const asked: string[] = [];
    const h = new HistoryClient({
      baseUrl: "http://gw.test",
      getToken: () => "t",
      fetch: async (url) => {
        asked.push(new URL(url).search);
        const page = pages.shift();
        return { ok: true, status: 200, text: async () => JSON.stringify(page) } as unknown as Response;
      },
    });
    const r = await h.catchUp("lobby", 2n, 1);
    expect(asked).toEqual(["?after=2&limit=1", "?after=5&limit=1"]);
    // Only what was seen is claimed: rev 5, not the head (9).
    expect(r.headRev).toBe(5n);
    expect(r.room?.maxBodyBytes).toBe(100);
    expect(r.messages.map((m) => m.rev)).toEqual([5n]);
  });

  it("catch-up: the head of the last page, or the newest rev seen if the head lags", async () => {
    const reply = (page: unknown) => async () =>
      ({ ok: true, status: 200, text: async () => JSON.stringify(page) }) as unknown as Response;
    const h = (page: unknown) => new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: reply(page) });
    const ahead = await h({ messages: [{ seq: "1", rev: "4" }], room: { headRev: "7" } }).catchUp("lobby", 0n);
    expect(ahead.headRev).toBe(7n);
    const behind = await h({ messages: [{ seq: "1", rev: "8" }, { seq: "2", rev: "6" }], room: { headRev: "7" } }).catchUp("lobby", 0n);
    expect(behind.headRev).toBe(8n);
    const equal = await h({ messages: [{ seq: "1", rev: "7" }], room: { headRev: "7" } }).catchUp("lobby", 0n);
    expect(equal.headRev).toBe(7n);
    const noRoom = await h({ messages: [{ seq: "1", rev: "3" }] }).catchUp("lobby", 1n);
    expect(noRoom.headRev).toBe(3n);
    expect(noRoom.room).toBeUndefined();
    const nothing = await h({ messages: [] }).catchUp("lobby", 4n);
    expect(nothing.headRev).toBe(4n);
  });
});
