// The REST view and a room's state in the cases Stryker's first full run
// showed untested (docs/testing.md, "Web package"): answers from a newer
// gateway, the origin probe's request and what it accepts as a refusal, and
// a room before and at its first page.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type FetchLike, HistoryClient, HttpError } from "../src/history.js";
import { RoomState } from "../src/room-state.js";

function answering(status: number, body: unknown, seen: Array<{ url: string; init?: RequestInit }> = []): FetchLike {
  return async (url, init) => {
    seen.push({ url, ...(init ? { init } : {}) });
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  };
}

/** The credentialed request fails (as a refused CORS preflight); the probe gets `status` and `body`. */
function probed(status: number, body: unknown, probes: RequestInit[]): FetchLike {
  return async (_url, init) => {
    if (new Headers(init?.headers).get("authorization")) throw new TypeError("Failed to fetch");
    probes.push(init ?? {});
    return new Response(JSON.stringify(body), { status });
  };
}

const message = { room: "lobby", seq: "3", rev: "7", body: "edited", author: { id: "bob" } };

describe("history (mutants)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("takes an edited or deleted message from a newer gateway that adds fields", async () => {
    const h = new HistoryClient({
      baseUrl: "http://gw.test",
      getToken: () => "t",
      fetch: answering(200, { ...message, reactions: ["+1"] }),
    });
    expect((await h.edit("lobby", 3n, "edited")).body).toBe("edited");
    expect((await h.remove("lobby", 3n)).rev).toBe(7n);
  });

  it("lists a room without a query when given no cursor", async () => {
    const seen: Array<{ url: string }> = [];
    const h = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: answering(200, {}, seen) });
    await h.list("lobby");
    expect(seen.map((s) => s.url)).toEqual(["http://gw.test/v1/rooms/lobby/messages"]);
  });

  it("probes a refused origin with a plain uncached GET it can abort", async () => {
    const probes: RequestInit[] = [];
    const h = new HistoryClient({
      baseUrl: "http://gw.test",
      getToken: () => "t",
      fetch: probed(403, { code: "ORIGIN_NOT_ALLOWED" }, probes),
    });
    const e = (await h.latest("lobby").catch((x: unknown) => x)) as HttpError;
    expect(e.code).toBe("ORIGIN_NOT_ALLOWED");
    // no detail from the gateway: none made up
    expect(e.message).toBe("HTTP 403 ORIGIN_NOT_ALLOWED");
    expect(probes).toHaveLength(1);
    expect(probes[0]?.method).toBe("GET");
    expect(probes[0]?.cache).toBe("no-store");
    expect(probes[0]?.signal).toBeInstanceOf(AbortSignal);
  });

  it("takes only a 403 ORIGIN_NOT_ALLOWED as a refused origin; anything else is the network", async () => {
    for (const [status, body] of [
      [403, { code: "PERMISSION_DENIED" }],
      [200, { code: "ORIGIN_NOT_ALLOWED" }],
    ] as const) {
      const h = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: probed(status, body, []) });
      const e = (await h.latest("lobby").catch((x: unknown) => x)) as HttpError;
      expect(e.code).toBe("NETWORK");
      expect(e.status).toBe(0);
    }
  });

  it("gives up an origin probe that gets no answer", async () => {
    let probeAborted = false;
    const f: FetchLike = (_url, init) => {
      if (new Headers(init?.headers).get("authorization")) return Promise.reject(new TypeError("Failed to fetch"));
      return new Promise((_, reject) => {
        init?.signal?.addEventListener("abort", () => {
          probeAborted = true;
          reject(new DOMException("aborted", "AbortError"));
        });
      });
    };
    const h = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: f, timeoutMs: 1000 });
    const result = h.latest("lobby").catch((x: unknown) => x);
    await vi.advanceTimersByTimeAsync(1000);
    expect(probeAborted).toBe(true);
    expect(((await result) as HttpError).code).toBe("NETWORK");
  });
});

describe("room state (mutants)", () => {
  it("has nothing older to load before its first page", () => {
    const r = new RoomState("lobby");
    expect(r.hasOlder).toBe(false);
    expect(r.olderCursor()).toBeNull();
  });

  it("takes an empty first page that claims more (a room emptied meanwhile) without failing", () => {
    const r = new RoomState("lobby");
    expect(r.loadLatest([], 5n, true)).toEqual([]);
    expect(r.loaded).toBe(true);
    expect(r.syncedRev).toBe(5n);
  });
});
