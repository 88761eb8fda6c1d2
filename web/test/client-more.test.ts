// @vitest-environment node
// More of the client's promises, each pinned by what a user would notice:
// heartbeats on quiet links, what a refused token does mid-session, the
// browser's network events, transient refusals, fatal errors, and acks.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ConnectOptions, ParleyClient } from "../src/client.js";
import { ErrorCode } from "../src/protocol.js";
import { FakeGateway, FakeNetwork } from "./fakes.js";

function start(gw: FakeGateway, extra: Partial<ConnectOptions> = {}, rooms = ["lobby"]) {
  const net = new FakeNetwork();
  const states: Array<{ state: string; reason?: string | undefined }> = [];
  const errors: Array<{ room?: string | undefined; code: string; fatal: boolean }> = [];
  const client = new ParleyClient({
    url: "http://gw.test",
    token: "alice",
    WebSocket: gw.WebSocket,
    fetch: gw.fetch,
    network: net,
    backoff: { random: () => 0.5 },
    ...extra,
  });
  client.on("state", (e) => states.push({ state: e.state, reason: e.reason }));
  client.on("error", (e) => errors.push({ room: e.room, code: e.code, fatal: e.fatal }));
  for (const r of rooms) client.subscribe(r);
  client.start();
  return { client, net, states, errors };
}

const publishes = (gw: FakeGateway) => gw.received.filter((f) => f.kind.case === "publish").length;

describe("client, more", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("keeps a quiet link with a long ping interval: a pong settles what is owed", async () => {
    const gw = new FakeGateway();
    gw.pongDelayMs = 200;
    const { client, states } = start(gw, { heartbeatIntervalMs: 20_000, heartbeatTimeoutMs: 2000 });
    await vi.advanceTimersByTimeAsync(90_000);
    expect(client.state).toBe("live");
    expect(states.filter((s) => s.state === "offline")).toEqual([]);
    expect(gw.sockets).toHaveLength(1);
    const nonces = gw.received.filter((f) => f.kind.case === "ping").map((f) => f.kind.case === "ping" && f.kind.value.nonce);
    expect(nonces.slice(0, 3)).toEqual([1n, 2n, 3n]);
    client.close();
  });

  it("after a 4401 asks the provider for a replacement of the refused token, then resumes", async () => {
    const gw = new FakeGateway();
    const asked: string[] = [];
    let token = "alice";
    const { client, states } = start(gw, {
      tokenProvider: async (req) => {
        asked.push(`${req.reason}:${req.rejected ?? ""}`);
        return token;
      },
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(asked).toEqual(["connect:"]);
    token = "alice@2";
    gw.last.serverClose(4401);
    expect(states[states.length - 1]).toEqual({ state: "connecting", reason: "closed 4401" });
    await vi.advanceTimersByTimeAsync(50);
    expect(asked).toEqual(["connect:", "rejected:alice"]);
    expect(client.state).toBe("live");
    client.close();
  });

  it("takes an UNAUTHENTICATED error frame as the 4401 that follows it", async () => {
    const gw = new FakeGateway();
    const asked: string[] = [];
    const { client } = start(gw, {
      tokenProvider: async (req) => {
        asked.push(req.reason);
        return req.reason === "rejected" ? "alice@2" : "alice";
      },
    });
    await vi.advanceTimersByTimeAsync(50);
    gw.last.push({ kind: { case: "error", value: { code: ErrorCode.UNAUTHENTICATED, detail: "expired", fatal: true } } });
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets[0]?.closedByClient).toBe(4401);
    expect(asked).toEqual(["connect", "rejected"]);
    expect(client.state).toBe("live");
    client.close();
  });

  it("reconnects after a fatal error frame (slow consumer)", async () => {
    const gw = new FakeGateway();
    const { client, errors } = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.last.push({ kind: { case: "error", value: { code: ErrorCode.RESOURCE_EXHAUSTED, detail: "too slow", fatal: true } } });
    await vi.advanceTimersByTimeAsync(50);
    expect(errors).toEqual([{ room: undefined, code: "RESOURCE_EXHAUSTED", fatal: true }]);
    expect(gw.sockets[0]?.closedByClient).toBe(4000);
    expect(gw.sockets).toHaveLength(2);
    expect(client.state).toBe("live");
    // A non-fatal error about nothing in particular changes nothing.
    gw.last.push({ kind: { case: "error", value: { code: ErrorCode.MALFORMED, detail: "?" } } });
    await vi.advanceTimersByTimeAsync(50);
    expect(errors[1]).toEqual({ room: undefined, code: "MALFORMED", fatal: false });
    expect(gw.sockets).toHaveLength(2);
    client.close();
  });

  it("does not wait for close() when the provider answers after it", async () => {
    const gw = new FakeGateway();
    let answer!: (t: string) => void;
    let calls = 0;
    const { client } = start(gw, {
      tokenProvider: () => {
        if (++calls === 1) return "alice";
        return new Promise<string>((r) => {
          answer = r;
        });
      },
    });
    await vi.advanceTimersByTimeAsync(50);
    gw.last.serverClose(4401);
    await vi.advanceTimersByTimeAsync(50);
    client.close();
    answer("alice@late");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gw.sockets).toHaveLength(1);
    expect(client.state).toBe("closed");
  });

  it("a token refused by REST during a session signs out: the WebSocket closes too", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "mine");
    const auth: string[] = [];
    const { client, errors } = start(gw);
    client.on("auth-error", (e) => auth.push(e.reason));
    await vi.advanceTimersByTimeAsync(50);
    gw.rejected.add("alice");
    await expect(client.edit("lobby", 1n, "x")).rejects.toMatchObject({ reason: "rejected" });
    expect(client.state).toBe("unauthenticated");
    expect(gw.sockets[0]?.closedByClient).toBe(1000);
    expect(auth).toEqual(["rejected"]);
    expect(errors).toContainEqual({ room: undefined, code: "UNAUTHENTICATED", fatal: true });
    // Nothing is retried, whatever the network does.
    const net = client as unknown as { networkOnline(): void };
    net.networkOnline();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gw.sockets).toHaveLength(1);
    client.close();
  });

  it("handles the browser's network events only when they mean something", async () => {
    const gw = new FakeGateway();
    const { client, net } = start(gw, { backoff: { random: () => 0.99, baseMs: 20_000 } });
    await vi.advanceTimersByTimeAsync(50);
    net.goOnline(); // already connected
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(1);
    gw.refuse = true;
    net.goOffline();
    net.goOffline(); // nothing left to close
    await vi.advanceTimersByTimeAsync(100); // the retry at once fails; the next waits ~20 s
    const before = gw.sockets.length;
    gw.refuse = false;
    net.goOnline();
    await vi.advanceTimersByTimeAsync(60_000);
    // One attempt on 'online', and the backoff timer it replaced does not fire.
    expect(gw.sockets.length).toBe(before + 1);
    expect(client.state).toBe("live");
    client.close();
  });

  it("tries a transiently refused send again after a pause, once, and not twice across a reconnect", async () => {
    const gw = new FakeGateway();
    const { client, errors } = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.busyPublishes = 1;
    const p = client.send("lobby", "patience");
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toEqual([{ room: "lobby", code: "RESOURCE_EXHAUSTED", fatal: false }]);
    await vi.advanceTimersByTimeAsync(980);
    expect(publishes(gw)).toBe(1); // not before a second
    await vi.advanceTimersByTimeAsync(20);
    expect(publishes(gw)).toBe(2);
    expect(client.pending()).toEqual([]);
    // Refused again, and the link drops before the pause is over: the
    // reconnect sends it, and the pause's timer does not send it again,
    // even while the resent copy waits for its ack.
    gw.busyPublishes = 1;
    client.send("lobby", "again");
    await vi.advanceTimersByTimeAsync(10);
    gw.ackDelayMs = 3000;
    gw.holdEvents = true;
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(2000);
    expect(client.pending()).toHaveLength(1);
    expect(publishes(gw)).toBe(4);
    gw.holdEvents = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(gw.store.stored.map((m) => m.body)).toEqual(["patience", "again"]);
    expect(publishes(gw)).toBe(4);
    expect(p.attempts).toBe(2);
    client.close();
  });

  it("sends a waiting message once, even when rooms go live one after the other", async () => {
    const gw = new FakeGateway();
    gw.addRoom("other");
    gw.ackDelayMs = 500;
    const { client } = start(gw, {}, ["lobby"]);
    await vi.advanceTimersByTimeAsync(50);
    gw.holdEvents = true; // neither the ack nor our own event settles it for now
    client.send("lobby", "in flight");
    await vi.advanceTimersByTimeAsync(10);
    expect(client.pending()).toHaveLength(1);
    client.subscribe("other"); // goes live while the ack is outstanding
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    await vi.advanceTimersByTimeAsync(1000);
    expect(publishes(gw)).toBe(1);
    expect(client.pending()).toEqual([]);
    client.close();
  });

  it("says who it is and what it may do once authenticated", async () => {
    const gw = new FakeGateway();
    gw.limits = { maxFrameBytes: 9000 };
    const seen: string[] = [];
    const client = new ParleyClient({ url: "http://gw.test", token: "alice", WebSocket: gw.WebSocket, fetch: gw.fetch, network: null });
    client.on("authenticated", (e) => seen.push(`${e.user.id}:${e.limits.maxFrameBytes}:${e.limits.frameRate}`));
    expect(client.isOrganizer).toBe(false);
    expect(client.user).toBeNull();
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(seen).toEqual(["alice:9000:20"]);
    expect(client.isOrganizer).toBe(false);
    expect(client.maxBodyBytes("lobby")).toBeNull(); // not followed
    client.close();
  });

  it("edits a room it does not follow without showing anything", async () => {
    const gw = new FakeGateway();
    const other = gw.addRoom("other");
    other.publish("alice", "o1", "there");
    const { client } = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    const edits: string[] = [];
    client.on("edit", (e) => edits.push(e.message.body));
    expect((await client.edit("other", 1n, "changed")).body).toBe("changed");
    expect(edits).toEqual([]);
    client.close();
  });

  it("sizes JSON frames in bytes, not characters", async () => {
    const gw = new FakeGateway();
    const client = new ParleyClient({ url: "http://gw.test", token: "a", format: "json", maxFrameBytes: 200, network: null });
    let fits = 0;
    while (client.check("lobby", "é".repeat(fits + 1)) === null) fits++;
    // Each é is 2 bytes on the wire: about half of what ASCII allows.
    let ascii = 0;
    while (client.check("lobby", "x".repeat(ascii + 1)) === null) ascii++;
    expect(Math.abs(ascii - 2 * fits)).toBeLessThanOrEqual(1);
    expect(fits).toBeGreaterThan(30);
    void gw;
  });

  it("catches up after a cut without announcing the missed messages as new, and fails a room whose history is gone", async () => {
    const gw = new FakeGateway();
    const { client, errors } = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    const fresh: boolean[] = [];
    client.on("message", (e) => fresh.push(e.replay));
    gw.blackhole = true;
    gw.store.publish("bob", "b1", "missed");
    await vi.advanceTimersByTimeAsync(11_000);
    gw.blackhole = false;
    await vi.advanceTimersByTimeAsync(15_000); // the attempt started in the dark times out first
    expect(client.state).toBe("live");
    expect(fresh).toEqual([true]);
    // The room disappears (404 on its catch-up): it fails, the client stays up.
    gw.rooms.delete("lobby");
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(5000);
    expect(errors).toContainEqual({ room: "lobby", code: "ROOM_NOT_FOUND", fatal: false });
    expect(client.state).toBe("live");
    expect(client.isLive("lobby")).toBe(false);
    client.close();
  });

  it("retries a catch-up the server could not serve (5xx) as a lost link", async () => {
    const gw = new FakeGateway();
    let fail = 0;
    const fetch: ConnectOptions["fetch"] = async (u, i) => {
      if (fail > 0 && u.includes("after=")) {
        fail--;
        return { ok: false, status: 503, text: async () => '{"code":"UNAVAILABLE","detail":"core down"}' } as unknown as Response;
      }
      return gw.fetch(u, i);
    };
    const { client, errors, states } = start(gw, { fetch });
    await vi.advanceTimersByTimeAsync(50);
    fail = 1;
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(5000);
    expect(errors).toContainEqual({ room: "lobby", code: "UNAVAILABLE", fatal: false });
    expect(states.map((s) => s.reason).filter(Boolean)).toContain("closed 4000 catch-up failed: HTTP 503 UNAVAILABLE: core down");
    expect(client.state).toBe("live");
    client.close();
  });

  it("does not send again what turned up stored during a transient pause", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    gw.busyPublishes = 1;
    const p = client.send("lobby", "maybe");
    await vi.advanceTimersByTimeAsync(10);
    gw.store.publish("alice", p.clientMsgId, "maybe"); // stored after all (another path)
    await vi.advanceTimersByTimeAsync(10);
    expect(client.pending()).toEqual([]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(publishes(gw)).toBe(1);
    client.close();
  });

  it("reports edits and deletions with what they replaced, from the REST answer before the stream's copy", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "one");
    const { client } = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    const seen: string[] = [];
    client.on("edit", (e) => seen.push(`edit ${e.previous.body} -> ${e.message.body}`));
    client.on("delete", (e) => seen.push(`delete ${e.previous?.body} -> ${e.message.deleted}`));
    gw.holdEvents = true;
    await client.edit("lobby", 1n, "two");
    expect(seen).toEqual(["edit one -> two"]);
    await client.delete("lobby", 1n);
    expect(seen).toEqual(["edit one -> two", "delete two -> true"]);
    gw.releaseEvents();
    gw.holdEvents = false;
    await vi.advanceTimersByTimeAsync(10);
    expect(seen).toHaveLength(2); // the stream's copies change nothing more
    client.close();
  });

  it("sends to a room it does not follow once connected, and to a followed one only once it is live", async () => {
    const gw = new FakeGateway();
    gw.addRoom("other");
    const client = new ParleyClient({ url: "http://gw.test", token: "alice", WebSocket: gw.WebSocket, fetch: gw.fetch, network: null });
    client.send("other", "early, elsewhere");
    client.subscribe("lobby");
    gw.holdSubscribed = true;
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    client.send("lobby", "while catching up");
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.received.filter((f) => f.kind.case === "publish").map((f) => f.kind.case === "publish" && f.kind.value.body)).toEqual([]);
    gw.releaseSubscribed();
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.store.stored.map((m) => m.body)).toEqual(["while catching up"]);
    expect(gw.rooms.get("other")?.stored.map((m) => m.body)).toEqual(["early, elsewhere"]);
    client.close();
  });

  it("signs in without a user named by the gateway, and then may change nothing", async () => {
    const gw = new FakeGateway();
    gw.anonymous = true;
    gw.store.publish("alice", "a1", "x");
    const client = new ParleyClient({ url: "http://gw.test", token: "alice", WebSocket: gw.WebSocket, fetch: gw.fetch, network: null });
    let told = 0;
    client.on("authenticated", () => told++);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    expect(client.user).toBeNull();
    expect(told).toBe(0);
    expect(client.canModify(client.room("lobby")?.get(1n) as never)).toBe(false);
    client.close();
  });

  it("loads a room's first page once, even when the connection asks while it is on its way", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 60; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { client } = start(gw, { fetch: async (u, i) => (await gate, gw.fetch(u, i)) });
    await vi.advanceTimersByTimeAsync(50); // authenticated; the page is still on its way
    release();
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.requests.filter((r) => r.endsWith("?limit=50"))).toHaveLength(1);
    expect(client.room("lobby")?.size).toBe(50);
    expect(client.room("lobby")?.hasOlder).toBe(true);
    expect(client.state).toBe("live");
    client.close();
  });

  it("takes a history page without a room as an empty head", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "x");
    const strip: ConnectOptions["fetch"] = async (u, i) => {
      const res = await gw.fetch(u, i);
      const body = JSON.parse(await res.text()) as Record<string, unknown>;
      delete body.room;
      return { ok: true, status: 200, text: async () => JSON.stringify(body) } as unknown as Response;
    };
    const client = new ParleyClient({ url: "http://gw.test", token: "alice", WebSocket: gw.WebSocket, fetch: strip, network: null });
    client.subscribe("lobby"); // history only: no connection yet
    await vi.advanceTimersByTimeAsync(50);
    expect(client.room("lobby")?.size).toBe(1);
    expect(client.room("lobby")?.syncedRev).toBe(0n);
    expect(client.maxBodyBytes("lobby")).toBeNull();
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    expect(client.maxBodyBytes("lobby")).toBe(4096); // Subscribed says it
    client.close();
  });

  it("ignores an event for a room that is not subscribed on this connection yet", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const realFetch = gw.fetch;
    (client as unknown as { history: { opts: { fetch: ConnectOptions["fetch"] } } }).history.opts.fetch = async (u, i) => (
      await gate, realFetch(u, i)
    );
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(20); // reconnected; the catch-up waits
    gw.last.push({ kind: { case: "event", value: { type: 1, message: { room: "lobby", seq: 9n, rev: 99n, body: "stray" } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(client.room("lobby")?.syncedRev).toBe(0n);
    expect(client.room("lobby")?.get(9n)).toBeUndefined();
    release();
    await vi.advanceTimersByTimeAsync(20);
    expect(client.state).toBe("live");
    client.close();
  });

  it("fails a room only for an error answering its own pending subscribe", async () => {
    const gw = new FakeGateway();
    gw.holdSubscribed = true;
    const { client, errors } = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    const sub = gw.received.find((f) => f.kind.case === "subscribe");
    gw.last.push({ requestId: 999n, kind: { case: "error", value: { code: ErrorCode.MALFORMED, detail: "?" } } });
    gw.last.push({ kind: { case: "error", value: { code: ErrorCode.MALFORMED, detail: "??" } } });
    await vi.advanceTimersByTimeAsync(10);
    gw.releaseSubscribed();
    await vi.advanceTimersByTimeAsync(10);
    expect(client.isLive("lobby")).toBe(true);
    // A late error for that subscribe, once live, fails nothing either.
    gw.last.push({ requestId: sub?.requestId ?? 0n, kind: { case: "error", value: { code: ErrorCode.INTERNAL, detail: "late" } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(client.isLive("lobby")).toBe(true);
    expect(errors.map((e) => `${e.room}:${e.code}`)).toEqual(["undefined:MALFORMED", "undefined:MALFORMED", "undefined:INTERNAL"]);
    client.close();
  });

  it("does not pile up connections when 'online' comes while a fresh token is awaited", async () => {
    const gw = new FakeGateway();
    let answer!: (t: string) => void;
    let calls = 0;
    const { client, net } = start(gw, {
      tokenProvider: () => {
        if (++calls === 1) return "alice";
        return new Promise<string>((r) => {
          answer = r;
        });
      },
    });
    await vi.advanceTimersByTimeAsync(50);
    gw.last.serverClose(4401);
    await vi.advanceTimersByTimeAsync(10);
    net.goOnline(); // opens a connection, which waits for the same token
    await vi.advanceTimersByTimeAsync(10);
    answer("alice@2");
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets).toHaveLength(2);
    expect(client.state).toBe("live");
    client.close();
  });

  it("closes the WebSocket with its reasons, and reports a sign-in failure once", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "x");
    const { client, states } = start(gw, { historyLimit: 1 });
    await vi.advanceTimersByTimeAsync(50);
    const auth: string[] = [];
    client.on("auth-error", (e) => auth.push(`${e.code}:${e.reason}`));
    gw.rejected.add("alice");
    await Promise.allSettled([client.edit("lobby", 1n, "y"), client.delete("lobby", 1n)]);
    expect(auth).toEqual(["UNAUTHENTICATED:rejected"]);
    expect(gw.sockets[0]?.closeReason).toBe("signed out");
    expect(states[states.length - 1]).toEqual({ state: "unauthenticated", reason: "the token was refused (invalid or expired)" });
    client.close();
    const gw2 = new FakeGateway();
    const c2 = start(gw2);
    await vi.advanceTimersByTimeAsync(50);
    c2.net.goOffline();
    expect(c2.states[c2.states.length - 1]?.reason).toBe("closed 4000 browser offline");
    await vi.advanceTimersByTimeAsync(50);
    c2.client.close();
    expect(gw2.last.closeReason).toBe("client closed");
  });

  it("does not load older pages as new messages", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 4; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const { client } = start(gw, { historyLimit: 2 });
    await vi.advanceTimersByTimeAsync(50);
    const seen: string[] = [];
    client.on("message", (e) => seen.push(e.message.body));
    const pages: boolean[] = [];
    client.on("history", (e) => pages.push(e.older));
    expect(await client.loadOlder("lobby")).toBe(false);
    expect(seen).toEqual([]);
    expect(pages).toEqual([true]);
    client.close();
  });

  it("signs out before any connection when the history's token is refused, and start() then opens none", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("expired");
    const client = new ParleyClient({ url: "http://gw.test", token: "expired", WebSocket: gw.WebSocket, fetch: gw.fetch, network: null });
    client.subscribe("lobby");
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("unauthenticated");
    client.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gw.sockets).toHaveLength(0);
    const failing = new ParleyClient({
      url: "http://gw.test",
      tokenProvider: () => Promise.reject(new Error("no session")),
      WebSocket: gw.WebSocket,
      fetch: gw.fetch,
      network: null,
    });
    failing.subscribe("lobby");
    await vi.advanceTimersByTimeAsync(50);
    expect(failing.state).toBe("unauthenticated");
  });

  it("does not let a room that was live count as live again before its catch-up", async () => {
    const gw = new FakeGateway();
    gw.addRoom("other");
    let gateOther: Promise<void> | null = null;
    let release!: () => void;
    const fetch: ConnectOptions["fetch"] = async (u, i) => {
      if (gateOther && u.includes("/rooms/other/")) await gateOther;
      return gw.fetch(u, i);
    };
    const { client } = start(gw, { fetch }, ["lobby", "other"]);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    gateOther = new Promise<void>((r) => {
      release = r;
    });
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.isLive("lobby")).toBe(false); // the client is not live...
    expect(client.state).toBe("catching-up"); // ...while "other" catches up
    client.send("other", "not yet");
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.rooms.get("other")?.stored).toHaveLength(0);
    release();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    expect(gw.rooms.get("other")?.stored.map((m) => m.body)).toEqual(["not yet"]);
    client.close();
  });
});
