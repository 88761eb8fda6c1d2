// The client's connection, catch-up and ack handling in the cases Stryker's
// first full run showed untested (docs/testing.md, "Web package"): where a
// catch-up starts, what an ack shows, what a closed client still does, the
// window's network events by default, and the reasons it gives.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ConnectionState, ParleyClient, connect } from "../src/client.js";
import { FakeGateway, FakeNetwork } from "./fakes.js";

function start(gw: FakeGateway, extra: Partial<ConstructorParameters<typeof ParleyClient>[0]> = {}) {
  const states: Array<{ state: ConnectionState; reason?: string | undefined }> = [];
  const client = new ParleyClient({
    url: "http://gw.test",
    token: "alice",
    WebSocket: gw.WebSocket,
    fetch: gw.fetch,
    network: new FakeNetwork(),
    backoff: { random: () => 0.5 },
    ...extra,
  });
  client.on("state", (e) => states.push({ state: e.state, reason: e.reason }));
  return { client, states };
}

describe("client (mutants)", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("catches up from the history page's head, not from the start of the room", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 3; i++) gw.store.publish("bob", `b${i}`, `hello ${i}`);
    const { client } = start(gw);
    client.subscribe("lobby");
    await vi.advanceTimersByTimeAsync(10); // the history page is in before the socket opens
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    const catchUps = gw.requests.filter((r) => r.includes("after="));
    // only what changed since the page (rev 3), never the whole room again
    expect(catchUps.length).toBeGreaterThan(0);
    for (const r of catchUps) expect(r).toContain("after=3");
    client.close();
  });

  it("shows its own message when the ack comes, once, however late the stream's copy is", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    gw.holdEvents = true; // the stream's copy stays in flight
    const shown: string[] = [];
    const acks: Array<{ seq?: bigint; duplicate: boolean }> = [];
    client.on("message", (e) => shown.push(e.message.body));
    client.on("ack", (e) => acks.push({ seq: e.message?.seq, duplicate: e.duplicate }));
    client.send("lobby", "mine");
    await vi.advanceTimersByTimeAsync(10);
    expect(acks).toEqual([{ seq: 1n, duplicate: false }]);
    expect(shown).toEqual(["mine"]);
    expect(client.room("lobby")?.messages().map((m) => m.body)).toEqual(["mine"]);
    gw.releaseEvents();
    await vi.advanceTimersByTimeAsync(10);
    expect(shown).toEqual(["mine"]);
    client.close();
  });

  it("reports a send seen stored after its ack was lost as a fresh ack, not a duplicate", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const acks: boolean[] = [];
    client.on("ack", (e) => acks.push(e.duplicate));
    gw.ackDelayMs = 60_000; // the ack never comes on this connection
    client.send("lobby", "hello");
    await vi.advanceTimersByTimeAsync(10); // its copy on the stream settles it
    expect(client.pending()).toEqual([]);
    expect(acks).toEqual([false]);
    client.close();
  });

  it("learns the room's body limit from the history page, before any connection", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 10;
    gw.refuse = true; // the WebSocket cannot connect
    const { client } = start(gw, {
      fetch: (u, i) => {
        gw.refuse = false;
        const r = gw.fetch(u, i);
        gw.refuse = true;
        return r;
      },
    });
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(20);
    expect(client.state).not.toBe("live");
    expect(client.maxBodyBytes("lobby")).toBe(10);
    expect(client.check("lobby", "x".repeat(11))?.code).toBe("BODY_TOO_LONG");
    client.close();
  });

  it("listens to the window's network events unless told otherwise", async () => {
    const gw = new FakeGateway();
    const { client, states } = start(gw, { network: undefined });
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    window.dispatchEvent(new Event("offline"));
    expect(states.at(-1)?.state).toBe("offline");
    expect(states.at(-1)?.reason).toContain("browser offline");
    client.close();
    // a closed client ignores the window from now on
    const sockets = gw.sockets.length;
    window.dispatchEvent(new Event("online"));
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets.length).toBe(sockets);
  });

  it("start() while waiting to retry opens no second connection", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw, { backoff: { random: () => 0.5, baseMs: 10_000 } });
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    gw.refuse = true; // every attempt from now on fails
    gw.last.serverClose(1011);
    await vi.advanceTimersByTimeAsync(10); // the first retry is immediate, and fails
    expect(client.state).toBe("offline"); // waiting out a 5 s backoff
    const sockets = gw.sockets.length;
    client.start();
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.sockets.length).toBe(sockets);
    client.close();
  });

  it("does nothing on reconnect() after close(): no request, no socket", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    client.close();
    const requests = gw.requests.length;
    const sockets = gw.sockets.length;
    client.reconnect();
    await vi.advanceTimersByTimeAsync(1000);
    expect(gw.requests.length).toBe(requests);
    expect(gw.sockets.length).toBe(sockets);
    expect(client.state).toBe("closed");
  });

  it("says UNAUTHENTICATED when the token provider fails on the first history request", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw, {
      token: undefined,
      tokenProvider: async () => {
        throw new Error("no session");
      },
    });
    const codes: string[] = [];
    client.on("auth-error", (e) => codes.push(e.code));
    client.subscribe("lobby");
    await vi.advanceTimersByTimeAsync(50);
    expect(codes).toEqual(["UNAUTHENTICATED"]);
    client.close();
  });

  it("gives 'heartbeat timeout' as the reason a dead link went offline", async () => {
    const gw = new FakeGateway();
    const { client, states } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    gw.blackhole = true;
    await vi.advanceTimersByTimeAsync(10_500);
    const off = states.find((s) => s.state === "offline");
    expect(off?.reason).toContain("heartbeat timeout");
    client.close();
  });

  it("reports the first history page as such, not as an older page", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "hello");
    const { client } = start(gw);
    const older: boolean[] = [];
    client.on("history", (e) => older.push(e.older));
    client.subscribe("lobby");
    await vi.advanceTimersByTimeAsync(10);
    expect(older).toEqual([false]);
    client.close();
  });

  it("loads only the newest page, even when the link is up before the page arrives", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 80; i++) gw.store.publish("bob", `b${i}`, `hello ${i}`);
    // REST answers take 100 ms; the WebSocket is up within a few
    const slow: typeof gw.fetch = (u, i) => new Promise((r) => setTimeout(() => r(gw.fetch(u, i)), 100));
    const { client } = start(gw, { fetch: slow });
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(500);
    expect(client.state).toBe("live");
    const room = client.room("lobby");
    expect(room?.size).toBe(50);
    expect(room?.hasOlder).toBe(true);
    expect(room?.messages()[0]?.seq).toBe(31n);
    // the page is what the connection waited for: no catch-up from rev 0
    expect(gw.requests.filter((r) => r.includes("after=0"))).toEqual([]);
    client.close();
  });

  it("misses nothing stored between its catch-up and its subscription: the replay brings it", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "before");
    let inGap = false;
    const fetch: typeof gw.fetch = async (u, i) => {
      const r = await gw.fetch(u, i);
      // stored right after the catch-up page was read, before the subscribe
      if (inGap && u.includes("after=")) {
        inGap = false;
        gw.store.publish("bob", "gap", "in the gap");
      }
      return r;
    };
    const { client } = start(gw, { fetch });
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    const seen: Array<[string, boolean]> = [];
    client.on("message", (e) => seen.push([e.message.body, e.replay]));
    inGap = true;
    gw.last.serverClose(1011);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    expect(seen).toEqual([["in the gap", true]]);
    expect(client.room("lobby")?.messages().map((m) => m.body)).toEqual(["before", "in the gap"]);
    client.close();
  });

  it("calls a token refused over the WebSocket UNAUTHENTICATED, not expired", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("alice");
    const { client } = start(gw);
    const codes: string[] = [];
    client.on("auth-error", (e) => codes.push(e.code));
    client.start(); // no room: only the WebSocket sees the token
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("unauthenticated");
    expect(codes).toEqual(["UNAUTHENTICATED"]);
    client.close();
  });

  it("calls a provider that fails for a connection UNAUTHENTICATED", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw, {
      token: undefined,
      tokenProvider: async () => {
        throw new Error("logged out");
      },
    });
    const codes: string[] = [];
    client.on("auth-error", (e) => codes.push(e.code));
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(codes).toEqual(["UNAUTHENTICATED"]);
    client.close();
  });

  it("goes straight to 'closed' on close(): no offline state, no retry left behind", async () => {
    const gw = new FakeGateway();
    const { client, states } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const before = states.length;
    client.close();
    expect(states.slice(before).map((s) => s.state)).toEqual(["closed"]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gw.sockets).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("connect() hands back a client that is already connecting", async () => {
    const gw = new FakeGateway();
    const client = connect({ url: "http://gw.test", token: "alice", WebSocket: gw.WebSocket, fetch: gw.fetch, network: null });
    expect(client).toBeInstanceOf(ParleyClient);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    client.close();
  });

  it("sends its next ping ahead of a long queue of sends", async () => {
    const gw = new FakeGateway();
    gw.limits = { frameRate: 2, frameBurst: 4 };
    const { client } = start(gw);
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const from = gw.received.length;
    for (let i = 0; i < 40; i++) client.send("lobby", `slow ${i}`);
    await vi.advanceTimersByTimeAsync(6_000); // the next ping is due at 5 s
    const kinds = gw.received.slice(from).map((f) => f.kind.case);
    const ping = kinds.indexOf("ping");
    expect(ping).toBeGreaterThan(0);
    // it went out when due, not after the ~20 s the whole queue takes
    expect(kinds.slice(0, ping).filter((k) => k === "publish").length).toBeLessThan(15);
    client.close();
  });
});
