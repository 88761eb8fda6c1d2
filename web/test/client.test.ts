// @vitest-environment node
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ConnectionState, ParleyClient, connect, gatewayEndpoints } from "../src/client.js";
import { FakeGateway, FakeNetwork } from "./fakes.js";

function start(gw: FakeGateway, extra: Partial<Parameters<typeof connect>[0]> = {}) {
  const net = new FakeNetwork();
  const states: ConnectionState[] = [];
  const retries: number[] = [];
  const client = new ParleyClient({
    url: "http://gw.test",
    token: "alice",
    WebSocket: gw.WebSocket,
    fetch: gw.fetch,
    network: net,
    backoff: { random: () => 0.5 },
    ...extra,
  });
  client.on("state", (e) => {
    states.push(e.state);
    if (e.retryInMs !== undefined) retries.push(e.retryInMs);
  });
  return { client, net, states, retries };
}

const seqs = (c: ParleyClient) => c.room("lobby")?.messages().map((m) => Number(m.seq)) ?? [];
const bodies = (c: ParleyClient) => c.room("lobby")?.messages().map((m) => m.body) ?? [];

describe("client", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("derives the stream and REST endpoints from the gateway URL", () => {
    expect(gatewayEndpoints("http://h:7480")).toEqual({ ws: "ws://h:7480/v1/stream", http: "http://h:7480/" });
    expect(gatewayEndpoints("https://h/chat/")).toEqual({ ws: "wss://h/chat/v1/stream", http: "https://h/chat/" });
    expect(gatewayEndpoints("ws://h:1/v1/stream").http).toBe("http://h:1/");
  });

  it("loads history first, then subscribes from its headRev and goes live", async () => {
    const gw = new FakeGateway();
    for (let i = 1; i <= 3; i++) gw.store.publish("bob", `b${i}`, `hello ${i}`);
    gw.store.edit(2n, "hello 2 (edited)");
    const { client, states } = start(gw);
    const order: string[] = [];
    client.on("history", () => order.push("history"));
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const sub = gw.received.find((f) => f.kind.case === "subscribe");
    expect(sub?.kind.case === "subscribe" && sub.kind.value.resumeAfterRev).toBe(4n);
    expect(order).toEqual(["history"]);
    expect(client.state).toBe("live");
    expect(states).toEqual(["catching-up", "live"]);
    expect(bodies(client)).toEqual(["hello 1", "hello 2 (edited)", "hello 3"]);
    expect(client.isLive("lobby")).toBe(true);
    client.close();
  });

  it("turns batches on after authenticate and takes a batch as its frames, in order", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const kinds = gw.received.map((f) => f.kind.case);
    expect(kinds.slice(0, 2)).toEqual(["authenticate", "options"]);
    const opt = gw.received[1];
    expect(opt?.kind.case === "options" && opt.kind.value.batch).toBe(true);
    expect(gw.last.batch).toBe(true);
    expect(client.state).toBe("live"); // its Subscribed came inside a batch
    // a batch of live events and an ack, as the gateway coalesces them
    const seen: string[] = [];
    client.on("message", (e) => seen.push(e.message.body));
    const msgs = [1, 2, 3].map((i) => gw.store.publish("bob", `x${i}`, `burst ${i}`).message);
    gw.last.push({
      kind: {
        case: "batch",
        value: { frames: msgs.map((m) => ({ kind: { case: "event" as const, value: { type: 1, message: m } } })) },
      },
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(seen.slice(-3)).toEqual(["burst 1", "burst 2", "burst 3"]);
    expect(seqs(client)).toEqual([1, 2, 3]);
    client.close();
  });

  it("applies live events and shows sends as pending until acked", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const seen: string[] = [];
    client.on("message", (e) => seen.push(e.message.body));
    gw.store.publish("bob", "b1", "from bob");
    const p = client.send("lobby", "from alice");
    expect(client.pending("lobby").map((x) => x.clientMsgId)).toEqual([p.clientMsgId]);
    await vi.advanceTimersByTimeAsync(10);
    expect(client.pending()).toEqual([]);
    expect(seen).toEqual(["from bob", "from alice"]);
    expect(seqs(client)).toEqual([1, 2]);
    client.close();
  });

  it("notices a black-holed link by heartbeat, retries with backoff, catches up exactly once each", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b0", "before");
    const { client, states, retries } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");

    gw.blackhole = true;
    const cutAt = Date.now();
    for (let i = 1; i <= 5; i++) gw.store.publish("bob", `b${i}`, `during ${i}`);
    let offlineAt = 0;
    client.on("state", (e) => {
      if (e.state === "offline" && !offlineAt) offlineAt = Date.now();
    });
    await vi.advanceTimersByTimeAsync(10_500);
    expect(offlineAt).toBeGreaterThan(0);
    expect(offlineAt - cutAt).toBeLessThanOrEqual(10_000);
    // While cut: attempts time out and back off, never live.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(client.state).not.toBe("live");
    expect(retries[0]).toBe(0);
    expect(retries.slice(1, 4)).toEqual([250, 500, 1000]);

    gw.blackhole = false;
    for (let i = 6; i <= 8; i++) gw.store.publish("bob", `b${i}`, `during ${i}`);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(client.state).toBe("live");
    expect(states).toContain("catching-up");
    expect(seqs(client)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(bodies(client)[8]).toBe("during 8");
    // The resume point is the catch-up's head, and the stream replayed nothing twice.
    const subs = gw.received.filter((f) => f.kind.case === "subscribe");
    const last = subs[subs.length - 1];
    expect(last?.kind.case === "subscribe" && last.kind.value.resumeAfterRev).toBe(9n);
    gw.store.publish("bob", "b9", "after");
    await vi.advanceTimersByTimeAsync(10);
    expect(seqs(client)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    client.close();
  });

  it("a publish stored while its ack was lost (one-way dead link) is kept once", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    // The publish reaches the server but nothing comes back any more.
    gw.deafClient = true;
    const p = client.send("lobby", "are you there?");
    await vi.advanceTimersByTimeAsync(10);
    expect(gw.storedCount(p.clientMsgId)).toBe(1);
    expect(client.pending()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(11_000);
    expect(client.state).not.toBe("live");
    expect(client.pending()).toHaveLength(1);
    gw.deafClient = false;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(client.state).toBe("live");
    expect(client.pending()).toEqual([]);
    expect(gw.storedCount(p.clientMsgId)).toBe(1);
    expect(bodies(client).filter((b) => b === "are you there?")).toHaveLength(1);
    client.close();
  });

  it("a send that never reached the server goes out again after reconnect, once", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    gw.blackhole = true; // not detected yet
    const p = client.send("lobby", "into the void");
    await vi.advanceTimersByTimeAsync(11_000);
    expect(gw.storedCount(p.clientMsgId)).toBe(0);
    gw.blackhole = false;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(client.state).toBe("live");
    const publishes = gw.received.filter((f) => f.kind.case === "publish");
    expect(publishes.map((f) => f.kind.case === "publish" && f.kind.value.clientMsgId)).toEqual([p.clientMsgId]);
    expect(gw.storedCount(p.clientMsgId)).toBe(1);
    expect(client.pending()).toEqual([]);
    client.close();
  });

  it("the same clientMsgId is sent on every attempt until acked", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    // The core goes down twice before storing it, then takes it.
    gw.losePublishes = 2;
    const p = client.send("lobby", "hello");
    for (let i = 0; i < 2; i++) {
      await vi.advanceTimersByTimeAsync(5000);
      expect(client.state).toBe("live");
    }
    const ids = gw.received.filter((f) => f.kind.case === "publish").map((f) => f.kind.case === "publish" && f.kind.value.clientMsgId);
    expect(ids).toEqual([p.clientMsgId, p.clientMsgId, p.clientMsgId]);
    expect(client.pending()).toEqual([]);
    expect(gw.storedCount(p.clientMsgId)).toBe(1);
    client.close();
  });

  it("goes offline on the browser's offline event and retries at once when online", async () => {
    const gw = new FakeGateway();
    const { client, net } = start(gw, { backoff: { random: () => 0.99, baseMs: 10_000 } });
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    gw.refuse = true;
    net.goOffline();
    expect(client.state).toBe("offline");
    await vi.advanceTimersByTimeAsync(100); // immediate retry fails: now a long backoff
    expect(client.state).toBe("offline");
    const opened = gw.sockets.length;
    gw.refuse = false;
    net.goOnline();
    await vi.advanceTimersByTimeAsync(50);
    expect(gw.sockets.length).toBe(opened + 1);
    expect(client.state).toBe("live");
    client.close();
  });

  it("close() closes the WebSocket and stops reconnecting", async () => {
    const gw = new FakeGateway();
    const { client, states } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const s = gw.last;
    client.close();
    expect(s.closedByClient).toBe(1000);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(gw.sockets.length).toBe(1);
    expect(states[states.length - 1]).toBe("closed");
    expect(() => client.send("lobby", "x")).toThrow();
  });

  it("retries a send refused for a transient reason, same clientMsgId, on the same connection", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    gw.busyPublishes = 2;
    const p = client.send("lobby", "patience");
    await vi.advanceTimersByTimeAsync(10);
    expect(client.pending()).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(client.pending()).toEqual([]);
    const ids = gw.received.filter((f) => f.kind.case === "publish").map((f) => f.kind.case === "publish" && f.kind.value.clientMsgId);
    expect(ids).toEqual([p.clientMsgId, p.clientMsgId, p.clientMsgId]);
    expect(gw.sockets).toHaveLength(1);
    expect(gw.storedCount(p.clientMsgId)).toBe(1);
    client.close();
  });

  it("refuses at once a message larger than the gateway's frame limit (it would break every retry)", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 100_000; // a core whose body limit is above the frame limit
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const errors: string[] = [];
    client.on("send-error", (e) => errors.push(e.code));
    client.send("lobby", "x".repeat(70_000));
    client.send("lobby", "é".repeat(30_000)); // 60 000 bytes of UTF-8: fits
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toEqual(["BODY_TOO_LONG"]);
    expect(gw.received.filter((f) => f.kind.case === "publish")).toHaveLength(1);
    expect(client.pending()).toEqual([]);
    client.close();
  });

  it("reports a refused send and drops it from the pending list", async () => {
    const gw = new FakeGateway();
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const errors: string[] = [];
    client.on("send-error", (e) => errors.push(e.code));
    client.send("lobby", "   ");
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toEqual(["BODY_EMPTY"]);
    expect(client.pending()).toEqual([]);
    client.close();
  });

  it("resumes from the highest rev applied in order, not from an ack that overtook earlier events", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b0", "before");
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(client.room("lobby")?.syncedRev).toBe(1n);
    // Bob's message (rev 2) is in flight to us when our own publish (rev 3)
    // is acked: the ack overtakes the event.
    gw.holdEvents = true;
    gw.store.publish("bob", "b1", "in flight");
    const p = client.send("lobby", "mine");
    await vi.advanceTimersByTimeAsync(10);
    expect(client.pending()).toEqual([]);
    expect(client.room("lobby")?.get(3n)?.clientMsgId).toBe(p.clientMsgId);
    // The ack says nothing about rev 2: the resume point stays at 1.
    expect(client.room("lobby")?.syncedRev).toBe(1n);
    // The link drops before the held events arrive; they are lost with it.
    gw.last.serverClose(4503);
    gw.holdEvents = false;
    await vi.advanceTimersByTimeAsync(5000);
    expect(client.state).toBe("live");
    // The catch-up asked for everything after rev 1, so Bob's message is there, once.
    expect(gw.requests).toContain("GET /v1/rooms/lobby/messages?after=1&limit=500");
    expect(bodies(client)).toEqual(["before", "in flight", "mine"]);
    expect(seqs(client)).toEqual([1, 2, 3]);
    client.close();
  });

  it("edits and deletes through REST, and only what the user may change", async () => {
    const gw = new FakeGateway();
    gw.store.publish("alice", "a1", "typo");
    gw.store.publish("bob", "b1", "bob's");
    const { client } = start(gw);
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const room = client.room("lobby");
    const mine = room?.get(1n);
    const bobs = room?.get(2n);
    if (!mine || !bobs) throw new Error("history not loaded");
    expect(client.canModify(mine)).toBe(true);
    expect(client.canModify(bobs)).toBe(false);
    const edits: string[] = [];
    client.on("edit", (e) => edits.push(`${e.previous.body}->${e.message.body}`));
    const edited = await client.edit("lobby", 1n, "fixed");
    expect(edited.body).toBe("fixed");
    expect(room?.get(1n)?.body).toBe("fixed");
    await vi.advanceTimersByTimeAsync(10); // the stream's copy of the edit changes nothing more
    expect(edits).toEqual(["typo->fixed"]);
    await expect(client.delete("lobby", 2n)).rejects.toMatchObject({ code: "PERMISSION_DENIED", status: 403 });
    expect(room?.get(2n)?.deleted).toBe(false);
    const deleted = await client.delete("lobby", 1n);
    expect(deleted.deleted).toBe(true);
    expect(room?.get(1n)?.deleted).toBe(true);
    expect(client.canModify(room?.get(1n) as NonNullable<ReturnType<NonNullable<typeof room>["get"]>>)).toBe(false);
    client.close();
  });

  it("lets an organizer change anyone's message", async () => {
    const gw = new FakeGateway();
    gw.store.publish("bob", "b1", "spam");
    const { client } = start(gw, { token: "olga@organizer" });
    client.subscribe("lobby");
    client.start();
    await vi.advanceTimersByTimeAsync(50);
    const bobs = client.room("lobby")?.get(1n);
    if (!bobs) throw new Error("history not loaded");
    expect(client.isOrganizer).toBe(true);
    expect(client.canModify(bobs)).toBe(true);
    await client.delete("lobby", 1n);
    expect(client.room("lobby")?.get(1n)?.deleted).toBe(true);
    client.close();
  });
});
