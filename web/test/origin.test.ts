// A page whose origin the gateway refuses: the browser hides the CORS
// refusal (fetch only rejects), so the client asks again without
// credentials, reads the gateway's ORIGIN_NOT_ALLOWED, reports it once as a
// fatal error and stops, instead of retrying forever.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ParleyClient } from "../src/client.js";
import { HistoryClient, HttpError } from "../src/history.js";
import type { FetchLike } from "../src/history.js";
import { FakeGateway, FakeNetwork } from "./fakes.js";

/** fetch as a browser on a refused origin sees it: a credentialed request
 * fails (its preflight was refused); a simple one gets the readable 403. */
function refusedOrigin(calls: string[], probe: "refusal" | "open" | "down" = "refusal"): FetchLike {
  return async (url, init) => {
    const auth = new Headers(init?.headers).get("authorization");
    calls.push(auth ? "credentialed" : "probe");
    if (auth || probe === "down") throw new TypeError("Failed to fetch");
    if (probe === "open") return new Response('{"code":"UNAUTHENTICATED","detail":"no token"}', { status: 401 });
    return new Response(
      JSON.stringify({ code: "ORIGIN_NOT_ALLOWED", detail: "origin http://evil.test is not in this gateway's --origin allow-list" }),
      { status: 403, headers: { "content-type": "application/json" } },
    );
  };
}

describe("a refused origin", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("history names the refusal instead of a network error", async () => {
    const calls: string[] = [];
    const h = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: refusedOrigin(calls) });
    const e = await h.latest("lobby").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(HttpError);
    expect((e as HttpError).code).toBe("ORIGIN_NOT_ALLOWED");
    expect((e as HttpError).status).toBe(403);
    expect((e as HttpError).transient).toBe(false);
    expect(calls).toEqual(["credentialed", "probe"]);
  });

  it("a failure that is not a refusal stays a transient network error", async () => {
    for (const probe of ["open", "down"] as const) {
      const h = new HistoryClient({ baseUrl: "http://gw.test", getToken: () => "t", fetch: refusedOrigin([], probe) });
      const e = (await h.latest("lobby").catch((x: unknown) => x)) as HttpError;
      expect(e.code).toBe("NETWORK");
      expect(e.transient).toBe(true);
    }
  });

  it("the client reports it once as fatal and stops retrying", async () => {
    const gw = new FakeGateway();
    gw.refuse = true; // the WebSocket upgrade is refused as well
    const calls: string[] = [];
    const client = new ParleyClient({
      url: "http://gw.test",
      token: "alice",
      WebSocket: gw.WebSocket,
      fetch: refusedOrigin(calls),
      network: new FakeNetwork(),
      backoff: { random: () => 0.5 },
    });
    const errors: Array<{ code: string; fatal: boolean; room?: string | undefined }> = [];
    client.on("error", (e) => errors.push({ code: e.code, fatal: e.fatal, room: e.room }));
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(errors).toEqual([{ code: "ORIGIN_NOT_ALLOWED", fatal: true, room: "lobby" }]);
    expect(client.state).toBe("closed");
    expect(calls).toEqual(["credentialed", "probe"]);
  });
});
