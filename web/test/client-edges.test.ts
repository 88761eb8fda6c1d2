// @vitest-environment node
// The client's procedure at its edges: several rooms, rooms that fail,
// stray frames, timeouts, retries, and what close() and reconnect() leave.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ConnectOptions, type ConnectionState, ParleyClient, gatewayEndpoints } from "../src/client.js";
import { ErrorCode } from "../src/protocol.js";
import { FakeGateway, FakeNetwork } from "./fakes.js";

function start(gw: FakeGateway, extra: Partial<ConnectOptions> = {}, rooms = ["lobby"]) {
  const net = new FakeNetwork();
  const states: Array<{ state: ConnectionState; retryInMs?: number | undefined; reason?: string | undefined }> = [];
  const errors: string[] = [];
  const client = new ParleyClient({
    url: "http://gw.test",
    token: "alice",
    WebSocket: gw.WebSocket,
    fetch: gw.fetch,
    network: net,
    backoff: { random: () => 0.5 },
    ...extra,
  });
  client.on("state", (e) => states.push({ state: e.state, retryInMs: e.retryInMs, reason: e.reason }));
  client.on("error", (e) => errors.push(`${e.room ?? "-"}:${e.code}:${e.fatal}`));
  for (const r of rooms) client.subscribe(r);
  return { client, net, states, errors };
}

const frames = (gw: FakeGateway, kind: string) => gw.received.filter((f) => f.kind.case === kind);

describe("client edges", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.useRealTimers();
  });

  it("derives endpoints relative to the page, and keeps paths that only look like the stream's", () => {
    vi.stubGlobal("location", { href: "https://app.example.org/event/page" });
    expect(gatewayEndpoints("/chat/")).toEqual({ ws: "wss://app.example.org/chat/v1/stream", http: "https://app.example.org/chat/" });
    expect(gatewayEndpoints("wss://h/x/v1/stream/")).toEqual({ ws: "wss://h/x/v1/stream", http: "https://h/x/" });
    expect(gatewayEndpoints("http://h/a//").http).toBe("http://h/a/");
    expect(gatewayEndpoints("http://h/v1/streams/").http).toBe("http://h/v1/streams/");
    expect(gatewayEndpoints("http://h/x?y=1#z")).toEqual({ ws: "ws://h/x/v1/stream", http: "http://h/x/" });
  });

  it("needs a token or a token provider (an empty token is the server's to refuse)", () => {
    expect(() => new ParleyClient({ url: "http://gw.test" })).toThrow("parley: token or tokenProvider required");
    expect(() => new ParleyClient({ url: "http://gw.test", token: "" })).not.toThrow();
  });

  it("uses the maxFrameBytes option until the gateway states its own, and sizes frames as send() does", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 0;
    const { client } = start(gw, { maxFrameBytes: 120 });
    expect(client.limits.maxFrameBytes).toBe(120);
    // Find the longest body whose publish frame fits 120 bytes.
    let fits = 0;
    while (client.check("lobby", "x".repeat(fits + 1)) === null) fits++;
    expect(fits).toBeGreaterThan(40);
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const errors: string[] = [];
    client.on("send-error", (e) => errors.push(e.code));
    client.send("lobby", "x".repeat(fits));
    client.send("lobby", "x".repeat(fits + 1));
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toEqual(["BODY_TOO_LONG"]);
    expect(gw.store.stored.map((m) => m.body.length)).toEqual([fits]);
    gw.limits = { maxFrameBytes: 70_000 };
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(5000);
    expect(client.limits.maxFrameBytes).toBe(70_000);
    client.close();
  });

  it("aborts REST calls after requestTimeoutMs", async () => {
    const gw = new FakeGateway();
    // A server that never answers; only the abort ends the call, as with fetch.
    const hang: ConnectOptions["fetch"] = (_url, init) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(new Error("aborted"))));
    const { client, errors } = start(gw, { fetch: hang, requestTimeoutMs: 300 });
    client.start();
    await vi.advanceTimersByTimeAsync(250);
    expect(errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(errors).toEqual(["lobby:NETWORK:false"]);
    client.close();
  });

  it("start() opens one connection, whatever is called twice, and none after close()", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.start();
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    client.start();
    expect(gw.sockets).toHaveLength(1);
    client.close();
    client.close();
    client.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gw.sockets).toHaveLength(1);
    expect(client.state).toBe("closed");
  });

  it("follows several rooms: live only when every room is, and a room added later catches up on its own", async () => {
    const gw = new FakeGateway();
    const other = gw.addRoom("other");
    other.publish("bob", "o1", "in other");
    gw.holdSubscribed = true;
    const { client, states } = start(gw, {}, ["lobby", "other"]);
    const lobby = client.room("lobby");
    expect(client.subscribe("lobby")).toBe(lobby);
    expect(client.room("lobby")).toBe(lobby);
    expect(client.room("nowhere")).toBeUndefined();
    expect(client.wsUrl).toBe("ws://gw.test/v1/stream");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("catching-up");
    expect(client.isLive("lobby")).toBe(false);
    gw.holdSubscribed = false;
    gw.releaseSubscribed();
    await vi.advanceTimersByTimeAsync(10);
    expect(client.state).toBe("live");
    expect(client.isLive("lobby") && client.isLive("other")).toBe(true);
    expect(client.isLive("nowhere")).toBe(false);
    // A third room while live: catching up until its own Subscribed.
    const third = gw.addRoom("third");
    third.publish("bob", "t1", "in third");
    gw.holdSubscribed = true;
    client.subscribe("third");
    expect(client.state).toBe("catching-up");
    await vi.advanceTimersByTimeAsync(10);
    expect(client.isLive("lobby")).toBe(false); // the client is not live while a room catches up
    expect(client.room("third")?.messages().map((m) => m.body)).toEqual(["in third"]);
    gw.releaseSubscribed();
    await vi.advanceTimersByTimeAsync(10);
    expect(client.state).toBe("live");
    expect(client.isLive("third")).toBe(true);
    expect(states.map((s) => s.state)).toEqual(["catching-up", "live", "catching-up", "live"]);
    client.close();
  });

  it("a room that cannot be shown fails alone; the others go live", async () => {
    const gw = new FakeGateway();
    gw.addRoom("secret");
    gw.refuseSubscribe.set("secret", ErrorCode.PERMISSION_DENIED);
    const { client, errors } = start(gw, {}, ["lobby", "nowhere", "secret"]);
    client.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("live");
    expect(client.isLive("lobby")).toBe(true);
    expect(client.isLive("nowhere")).toBe(false);
    expect(client.isLive("secret")).toBe(false);
    expect(errors).toContain("nowhere:ROOM_NOT_FOUND:false");
    expect(errors).toContain("secret:PERMISSION_DENIED:false");
    expect(gw.sockets).toHaveLength(1);
    // After a reconnect the failed rooms are not tried again.
    const subscribes = frames(gw, "subscribe").length;
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(5000);
    expect(client.state).toBe("live");
    expect(frames(gw, "subscribe").length - subscribes).toBe(1);
    client.close();
  });

  it("sends what was typed while offline once live, and publishes to a room it does not follow", async () => {
    const gw = new FakeGateway();
    gw.addRoom("other");
    const { client } = start(gw);
    const p = client.send("lobby", "typed early");
    expect(client.pending()).toEqual([p]);
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.pending()).toEqual([]);
    expect(gw.store.stored.map((m) => m.body)).toEqual(["typed early"]);
    client.send("other", "elsewhere");
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.rooms.get("other")?.stored.map((m) => m.body)).toEqual(["elsewhere"]);
    expect(client.pending()).toEqual([]);
    expect(() => {
      client.close();
      client.send("lobby", "x");
    }).toThrow("parley: client is closed");
  });

  it("reconnect() opens now instead of waiting out the backoff, and does nothing while connected", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw, { backoff: { random: () => 0.99, baseMs: 60_000 } });
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    client.reconnect();
    expect(gw.sockets).toHaveLength(1);
    gw.refuse = true;
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(100); // the immediate retry fails; the next waits ~60 s
    expect(client.state).toBe("offline");
    const opened = gw.sockets.length;
    gw.refuse = false;
    client.reconnect();
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets.length).toBe(opened + 1);
    expect(client.state).toBe("live");
    // The backoff timer it replaced never fires.
    await vi.advanceTimersByTimeAsync(120_000);
    expect(gw.sockets.length).toBe(opened + 1);
    client.close();
    client.reconnect(); // closed: nothing
    await vi.advanceTimersByTimeAsync(100);
    expect(gw.sockets.length).toBe(opened + 1);
  });

  it("reconnect() after a sign-in error also loads the history it could not load", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("old");
    let token = "old";
    const { client } = start(gw, { getToken: () => token });
    client.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("unauthenticated");
    expect(client.room("lobby")?.loaded).toBe(false);
    token = "alice";
    gw.silentAuth = true; // no connection gets far: the history must come from reconnect() itself
    client.reconnect();
    await vi.advanceTimersByTimeAsync(10);
    expect(client.room("lobby")?.loaded).toBe(true);
    client.close();
  });

  it("loadOlder() only pages a loaded room with older messages, and drops a page made stale by a trim", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 6; i++) gw.store.publish("bob", `b${i}`, `m${i}`);
    const { client } = start(gw, { historyLimit: 2 });
    expect(await client.loadOlder("lobby")).toBe(false); // not loaded yet
    expect(await client.loadOlder("nowhere")).toBe(false);
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.trim("nowhere", 1)).toEqual([]);
    const slow = client.loadOlder("lobby"); // its REST call is under way...
    expect(client.trim("lobby", 1)).toEqual([5n]); // ...when the room is trimmed
    expect(await slow).toBe(true);
    // The page (3, 4) would have left seq 5 out: it was not applied.
    expect(client.room("lobby")?.messages().map((m) => Number(m.seq))).toEqual([6]);
    expect(await client.loadOlder("lobby", 5)).toBe(false);
    expect(client.room("lobby")?.messages().map((m) => Number(m.seq))).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await client.loadOlder("lobby")).toBe(false); // nothing older
    client.close();
  });

  it("close() stops listening to the network and cancels a pending retry", async () => {
    const gw = new FakeGateway();
    const { client, net } = start(gw, { backoff: { random: () => 0.99, baseMs: 5000 } });
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    gw.refuse = true;
    gw.last.serverClose(4503);
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("offline");
    client.close();
    gw.refuse = false;
    net.goOnline();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gw.sockets).toHaveLength(2);
    expect(client.state).toBe("closed");
    expect(vi.getTimerCount()).toBe(0);
  });

  it("passes REST errors other than 401 on as they are, without asking for a token", async () => {
    const gw = new FakeGateway();
    let asked = 0;
    const { client } = start(gw, {
      token: undefined,
      tokenProvider: () => {
        asked++;
        return "alice";
      },
    });
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const before = asked;
    await expect(client.edit("lobby", 99n, "x")).rejects.toMatchObject({ status: 404, code: "MESSAGE_NOT_FOUND" });
    expect(asked).toBe(before);
    client.close();
  });

  it("retries later when the WebSocket cannot even be created", async () => {
    const gw = new FakeGateway();
    let fail = 1;
    const Ctor = gw.WebSocket;
    const Flaky = class extends Ctor {
      constructor(url: string, protocols?: string | string[]) {
        if (fail-- > 0) throw new SyntaxError("bad url");
        super(url, protocols);
      }
    };
    const { client, states } = start(gw, { WebSocket: Flaky });
    client.start();
    expect(client.state).toBe("offline");
    expect(states[states.length - 1]?.reason).toBe("bad url");
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    client.close();
  });

  it("gives up a connection that opens but is never authenticated, after 8 s by default", async () => {
    const gw = new FakeGateway();
    gw.silentAuth = true;
    const { client, states } = start(gw);
    client.start();
    await vi.advanceTimersByTimeAsync(7999);
    expect(client.state).toBe("connecting");
    await vi.advanceTimersByTimeAsync(1);
    expect(states.find((s) => s.state === "offline")?.reason).toBe("closed 4000 connect timeout");
    expect(gw.sockets[0]?.closedByClient).toBe(4000);
    client.close();
  });

  it("stays live past the connect timeout once authenticated, and on a quiet healthy link", async () => {
    const gw = new FakeGateway();
    gw.pongDelayMs = 200;
    const { client, states } = start(gw);
    client.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe("live");
    expect(states.map((s) => s.state)).toEqual(["catching-up", "live"]);
    expect(frames(gw, "ping").length).toBeGreaterThanOrEqual(12);
    client.close();
  });

  it("a token provider that fails when a connection needs it is a sign-in error", async () => {
    const gw = new FakeGateway();
    let calls = 0;
    const auth: string[] = [];
    const { client } = start(gw, {
      token: undefined,
      tokenProvider: async () => {
        if (++calls > 1) throw new Error("logged out");
        return "alice";
      },
    });
    client.on("auth-error", (e) => auth.push(`${e.reason}:${e.detail}`));
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    gw.last.serverClose(4503); // the reconnect asks for a fresh token, and gets none
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("unauthenticated");
    expect(auth).toEqual(["provider-failed:token provider failed: logged out"]);
    client.close();
  });

  it("ignores stray frames: a Subscribed nobody asked for, a second Authenticated", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const s = gw.last;
    s.push({ kind: { case: "subscribed", value: { room: { name: "elsewhere", headRev: 99n } } } });
    s.push({ kind: { case: "subscribed", value: {} } });
    s.push({ kind: { case: "subscribed", value: { room: { name: "lobby", headRev: 99n, maxBodyBytes: 7 } } } });
    s.push({ kind: { case: "authenticated", value: { user: { id: "mallory" } } } });
    s.push({ kind: { case: "unsubscribed", value: { room: "lobby" } } });
    s.push({ kind: { case: "event", value: { message: { room: "elsewhere", seq: 1n, rev: 1n } } } });
    s.push({ kind: { case: "event", value: {} } });
    await vi.advanceTimersByTimeAsync(10);
    expect(client.user?.id).toBe("alice");
    expect(client.room("lobby")?.syncedRev).toBe(0n);
    expect(client.maxBodyBytes("lobby")).toBe(4096);
    expect(client.state).toBe("live");
    client.close();
  });
});
