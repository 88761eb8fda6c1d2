// @vitest-environment node
// A refused token is a sign-in problem, not a network one: the client stops
// retrying with it, says so (state 'unauthenticated' + 'auth-error'), and
// asks the app's tokenProvider for a fresh token instead.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ConnectOptions, type ConnectionState, ParleyClient } from "../src/client.js";
import { FakeGateway, FakeNetwork } from "./fakes.js";

function start(gw: FakeGateway, auth: Partial<ConnectOptions>) {
  const states: ConnectionState[] = [];
  const authErrors: string[] = [];
  const client = new ParleyClient({
    url: "http://gw.test",
    WebSocket: gw.WebSocket,
    fetch: gw.fetch,
    network: new FakeNetwork(),
    backoff: { random: () => 0.5 },
    ...auth,
  });
  client.on("state", (e) => states.push(e.state));
  client.on("auth-error", (e) => authErrors.push(e.reason));
  client.subscribe("lobby");
  client.start();
  return { client, states, authErrors };
}

describe("client sign-in", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("a refused static token ends in 'unauthenticated', with no endless retry", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("expired");
    const { client, states, authErrors } = start(gw, { token: "expired" });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe("unauthenticated");
    expect(states).not.toContain("live");
    expect(authErrors).toEqual(["rejected"]);
    // One attempt, not one every few seconds.
    expect(gw.sockets).toHaveLength(1);
    client.close();
  });

  it("asks the tokenProvider again after a 4401 and goes live with the fresh token", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("old");
    const asked: string[] = [];
    let next = "old";
    const { client, authErrors } = start(gw, {
      tokenProvider: async (req) => {
        asked.push(req.reason);
        const t = next;
        next = "alice";
        return t;
      },
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("live");
    expect(client.user?.id).toBe("alice");
    expect(asked).toContain("rejected");
    expect(authErrors).toEqual([]);
    // The history's REST call or the first connection saw the refusal; at
    // most one connection was spent on the old token.
    expect(gw.sockets.length).toBeLessThanOrEqual(2);
    expect(gw.received.filter((f) => f.kind.case === "authenticate").map((f) => f.kind.case === "authenticate" && f.kind.value.token).pop()).toBe("alice");
    expect(client.room("lobby")?.loaded).toBe(true);
    client.close();
  });

  it("a tokenProvider that fails is a sign-in error, not an offline loop", async () => {
    const gw = new FakeGateway();
    let calls = 0;
    const { client, authErrors } = start(gw, {
      tokenProvider: async () => {
        calls++;
        throw new Error("session over");
      },
    });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe("unauthenticated");
    expect(authErrors).toEqual(["provider-failed"]);
    expect(calls).toBeLessThanOrEqual(2);
    client.close();
  });

  it("stops asking when the provider keeps handing refused tokens", async () => {
    const gw = new FakeGateway();
    let n = 0;
    const { client, authErrors } = start(gw, {
      tokenProvider: async () => {
        const t = `bad${n++}`;
        gw.rejected.add(t);
        return t;
      },
    });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe("unauthenticated");
    expect(authErrors).toEqual(["rejected"]);
    expect(gw.sockets.length).toBeLessThanOrEqual(4);
    client.close();
  });

  it("a REST 401 on the history is a sign-in problem too", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("expired");
    const { client, authErrors } = start(gw, { token: "expired" });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe("unauthenticated");
    expect(authErrors.length).toBe(1);
    client.close();
  });

  it("reconnect() after a sign-in error tries again, with the new token", async () => {
    const gw = new FakeGateway();
    gw.rejected.add("expired");
    let token = "expired";
    const { client } = start(gw, { getToken: () => token });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(client.state).toBe("unauthenticated");
    token = "alice";
    client.reconnect();
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("live");
    expect(client.room("lobby")?.loaded).toBe(true);
    client.close();
  });

  it("a token refused mid-session (expired) asks the provider, then resumes", async () => {
    const gw = new FakeGateway();
    let token = "alice";
    const { client } = start(gw, { tokenProvider: async () => token });
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("live");
    gw.rejected.add("alice");
    token = "alice@fresh";
    gw.last.serverClose(4401);
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("live");
    client.close();
  });
});
