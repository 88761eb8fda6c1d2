// @vitest-environment node
// The client learns the server's limits and stays inside them: the core's
// body limit (Room.maxBodyBytes) and the gateway's frame size and rate
// (Authenticated.limits); after a 4429 close it backs off instead of
// reconnecting at once.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ParleyClient } from "../src/client.js";
import { CLOSE_RATE } from "../src/constants.js";
import { FakeGateway, FakeNetwork } from "./fakes.js";

function start(gw: FakeGateway) {
  const client = new ParleyClient({
    url: "http://gw.test",
    token: "alice",
    WebSocket: gw.WebSocket,
    fetch: gw.fetch,
    network: new FakeNetwork(),
    backoff: { random: () => 0.5 },
  });
  client.subscribe("lobby");
  client.start();
  return client;
}

const publishes = (gw: FakeGateway) => gw.received.filter((f) => f.kind.case === "publish");

describe("client limits", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("learns the body limit from the room and refuses a longer body before sending it", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 100;
    const client = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.maxBodyBytes("lobby")).toBe(100);
    // Counted in bytes of UTF-8, as the core counts: 50 × "é" is 100 bytes.
    expect(client.check("lobby", "é".repeat(50))).toBeNull();
    expect(client.check("lobby", `${"é".repeat(50)}x`)).toEqual({
      code: "BODY_TOO_LONG",
      detail: "101 bytes; the limit is 100",
      limit: 100,
      size: 101,
    });
    expect(client.check("lobby", "  \n ")?.code).toBe("BODY_EMPTY");
    const errors: string[] = [];
    client.on("send-error", (e) => errors.push(`${e.code}:${e.pending.body.length}`));
    client.send("lobby", `${"é".repeat(50)}x`);
    client.send("lobby", "é".repeat(50));
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toEqual(["BODY_TOO_LONG:51"]);
    // Only the one that fits went out.
    expect(publishes(gw)).toHaveLength(1);
    expect(gw.store.stored.map((m) => m.body.length)).toEqual([50]);
    client.close();
  });

  it("keeps no body limit of its own when the server states none", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 0; // an older core: Room.maxBodyBytes is 0
    const client = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.maxBodyBytes("lobby")).toBeNull();
    expect(client.check("lobby", "x".repeat(20_000))).toBeNull();
    client.close();
  });

  it("takes the frame limit and rate from Authenticated", async () => {
    const gw = new FakeGateway();
    gw.store.maxBody = 0;
    gw.limits = { maxFrameBytes: 1000, frameRate: 5, frameBurst: 10 };
    const client = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.limits).toEqual({ maxFrameBytes: 1000, frameRate: 5, frameBurst: 10 });
    expect(client.check("lobby", "x".repeat(2000))?.code).toBe("BODY_TOO_LONG");
    const errors: string[] = [];
    client.on("send-error", (e) => errors.push(e.code));
    client.send("lobby", "x".repeat(2000));
    await vi.advanceTimersByTimeAsync(10);
    expect(errors).toEqual(["BODY_TOO_LONG"]);
    expect(publishes(gw)).toHaveLength(0);
    client.close();
  });

  it("paces its frames under the gateway's token bucket: a burst of sends is never cut with 4429", async () => {
    const gw = new FakeGateway();
    gw.limits = { frameRate: 5, frameBurst: 10 };
    gw.enforceRate = { rate: 5, burst: 10 };
    const client = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    for (let i = 0; i < 30; i++) client.send("lobby", `burst ${i}`);
    await vi.advanceTimersByTimeAsync(1000);
    // Not all at once: the bucket (minus a margin) went out, the rest waits.
    expect(publishes(gw).length).toBeGreaterThan(3);
    expect(publishes(gw).length).toBeLessThan(30);
    expect(client.pending().length).toBeGreaterThan(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(gw.sockets).toHaveLength(1);
    expect(gw.last.closedByServer).toBeNull();
    expect(client.pending()).toEqual([]);
    expect(gw.store.stored.map((m) => m.body)).toEqual(Array.from({ length: 30 }, (_, i) => `burst ${i}`));
    client.close();
  });

  it("keeps pings flowing ahead of queued sends, so a long queue does not look like a dead link", async () => {
    const gw = new FakeGateway();
    gw.limits = { frameRate: 2, frameBurst: 4 };
    gw.enforceRate = { rate: 2, burst: 4 };
    const client = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    for (let i = 0; i < 40; i++) client.send("lobby", `slow ${i}`);
    await vi.advanceTimersByTimeAsync(25_000);
    expect(client.state).toBe("live");
    expect(gw.sockets).toHaveLength(1);
    expect(gw.last.closedByServer).toBeNull();
    expect(client.pending()).toEqual([]);
    client.close();
  });

  it("backs off after a 4429 close instead of reconnecting at once", async () => {
    const gw = new FakeGateway();
    gw.limits = { frameRate: 5, frameBurst: 10 };
    const client = start(gw);
    await vi.advanceTimersByTimeAsync(50);
    const offline: Array<number | undefined> = [];
    client.on("state", (e) => {
      if (e.state === "offline") offline.push(e.retryInMs);
    });
    gw.last.serverClose(CLOSE_RATE);
    expect(client.state).toBe("offline");
    // A full bucket takes burst / rate = 2 s to refill on the server.
    expect(offline[0]).toBeGreaterThanOrEqual(2000);
    await vi.advanceTimersByTimeAsync(1500);
    expect(gw.sockets).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(gw.sockets).toHaveLength(2);
    expect(client.state).toBe("live");
    client.close();
  });
});
