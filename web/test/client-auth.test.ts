// @vitest-environment node
// A refused token is a sign-in problem, not a network one: the client stops
// retrying with it, says so (state 'unauthenticated' + 'auth-error'), and
// asks the app's tokenProvider for a fresh token instead.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ConnectOptions, type ConnectionState, ParleyClient } from "../src/client.js";
import { ErrorCode } from "../src/protocol.js";
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
  const errors: { code: string; fatal: boolean }[] = [];
  const authCodes: string[] = [];
  client.on("state", (e) => states.push(e.state));
  client.on("auth-error", (e) => {
    authErrors.push(e.reason);
    authCodes.push(e.code);
  });
  client.on("error", (e) => errors.push({ code: e.code, fatal: e.fatal }));
  client.subscribe("lobby");
  client.start();
  return { client, states, authErrors, authCodes, errors };
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
  it("a session that outlived its token (TOKEN_EXPIRED, close 4402) goes on with a fresh one at once, every time, quietly", async () => {
    const gw = new FakeGateway();
    let issued = 0;
    const asked: { reason: string; rejected?: string }[] = [];
    const { client, states, errors, authErrors } = start(gw, {
      tokenProvider: (req) => {
        asked.push({ ...req });
        return `alice-${++issued}`;
      },
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("live");
    const pending = client.send("lobby", "across the renewal");
    for (let i = 0; i < 3; i++) {
      const old = gw.last;
      const used = old.user;
      // the gateway's sweep: error{TOKEN_EXPIRED} then close 4402; the
      // last round without the error frame (close only)
      if (i < 2) old.expire();
      else old.serverClose(4402);
      await vi.advanceTimersByTimeAsync(100);
      expect(gw.last).not.toBe(old);
      // the provider was asked for a token to replace the expired one
      expect(asked.at(-1)).toEqual({ reason: "rejected", rejected: used });
      expect(gw.last.user).toBe(`alice-${issued}`);
      expect(client.state).toBe("live");
    }
    // no wait between the sessions, nothing reported, nothing lost
    expect(states).not.toContain("offline");
    expect(errors).toEqual([]);
    expect(authErrors).toEqual([]);
    expect(client.pending()).toEqual([]);
    expect(gw.storedCount(pending.clientMsgId)).toBe(1);
    client.close();
  });

  it("a token expired already at authenticate ends in the sign-in state when no fresh one comes, not in a retry loop", async () => {
    const gw = new FakeGateway();
    gw.expired.add("stale");
    let calls = 0;
    const { client, errors, authErrors, authCodes } = start(gw, {
      tokenProvider: () => {
        calls++;
        return "stale"; // an app that keeps handing out its cached token
      },
    });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe("unauthenticated");
    expect(authErrors).toEqual(["rejected"]);
    expect(authCodes).toEqual(["TOKEN_EXPIRED"]);
    expect(errors).toEqual([{ code: "TOKEN_EXPIRED", fatal: true }]);
    // asked once to connect and once to replace it; never again on its own
    expect(calls).toBeLessThanOrEqual(3);
    expect(gw.sockets.length).toBeLessThanOrEqual(1);
    client.close();
  });

  it("an expired static token over the WebSocket alone (no REST call) says TOKEN_EXPIRED once and stops", async () => {
    const gw = new FakeGateway();
    gw.expired.add("old");
    const client = new ParleyClient({
      url: "http://gw.test",
      token: "old",
      WebSocket: gw.WebSocket,
      fetch: gw.fetch,
      network: new FakeNetwork(),
      backoff: { random: () => 0.5 },
    });
    const codes: string[] = [];
    client.on("auth-error", (e) => codes.push(e.code));
    client.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe("unauthenticated");
    expect(codes).toEqual(["TOKEN_EXPIRED"]);
    expect(gw.sockets).toHaveLength(1);
    client.close();
  });

  it("a token expired at authenticate is replaced by the provider's fresh one and the client goes live", async () => {
    const gw = new FakeGateway();
    gw.expired.add("stale");
    const { client, errors, authErrors } = start(gw, {
      tokenProvider: (req) => (req.reason === "rejected" ? "alice" : "stale"),
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("live");
    expect(client.user?.id).toBe("alice");
    expect(errors).toEqual([]);
    expect(authErrors).toEqual([]);
    client.close();
  });

  it("a request refused TOKEN_EXPIRED (the expiry met before the sweep) renews the session instead of failing the room", async () => {
    const gw = new FakeGateway();
    gw.refuseSubscribe.set("lobby", ErrorCode.TOKEN_EXPIRED);
    let issued = 0;
    const { client, errors } = start(gw, {
      tokenProvider: (req) => {
        // a fresh token is one the core takes
        if (req.reason === "rejected") gw.refuseSubscribe.delete("lobby");
        return `alice-${++issued}`;
      },
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(client.state).toBe("live");
    expect(client.isLive("lobby")).toBe(true);
    expect(gw.sockets).toHaveLength(2);
    expect(errors).toEqual([]);
    client.close();
  });

  it("a REST 401 TOKEN_EXPIRED asks the provider for a fresh token", async () => {
    const gw = new FakeGateway();
    gw.expired.add("stale");
    const asked: string[] = [];
    const { client, authErrors } = start(gw, {
      tokenProvider: (req) => {
        asked.push(req.reason);
        return req.reason === "rejected" ? "alice" : "stale";
      },
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(client.room("lobby")?.loaded).toBe(true);
    expect(asked).toContain("rejected");
    expect(authErrors).toEqual([]);
    client.close();
  });

  it("a core that keeps refusing fresh tokens as expired (clock skew) ends in the sign-in state, not a loop", async () => {
    const gw = new FakeGateway();
    // the gateway takes every token, the core calls each one expired
    gw.coreExpired = true;
    let issued = 0;
    const { client, authCodes } = start(gw, { tokenProvider: () => `alice-${++issued}` });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(client.state).toBe("unauthenticated");
    expect(authCodes).toEqual(["TOKEN_EXPIRED"]);
    // MAX_TOKEN_REFRESHES fresh tokens, then the app's turn
    expect(issued).toBeLessThanOrEqual(3);
    expect(gw.sockets.length).toBeLessThanOrEqual(3);
    client.close();
  });
});
