// @vitest-environment node
import { describe, expect, it } from "vitest";
import { MAX_TOKEN_REFRESHES } from "../src/constants.js";
import { AuthFailure, type TokenRequest, TokenSource } from "../src/token-source.js";

function provider(tokens: string[]) {
  const asked: TokenRequest[] = [];
  const fn = async (req: TokenRequest) => {
    asked.push(req);
    const t = tokens.shift();
    if (t === undefined) throw new Error("no more tokens");
    return t;
  };
  return { fn, asked };
}

const failure = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e instanceof AuthFailure ? e.reason : `other: ${String(e)}`;
  }
  return "resolved";
};

describe("token source", () => {
  it("uses a static token as is; its refusal is final", async () => {
    const s = new TokenSource({ token: "t" });
    expect(await s.current()).toBe("t");
    expect(await s.forConnection()).toBe("t");
    expect(await failure(s.replace("t"))).toBe("rejected");
    expect(await new TokenSource({}).current()).toBe("");
  });

  it("asks the provider once at start, and again for each later connection", async () => {
    const { fn, asked } = provider(["a", "b", "c"]);
    const s = new TokenSource({ provider: fn });
    expect(await s.current()).toBe("a"); // the history's REST call, before the WebSocket
    expect(await s.forConnection()).toBe("a"); // the first connection reuses it
    expect(await s.current()).toBe("a");
    expect(await s.forConnection()).toBe("b"); // a reconnect renews
    expect(await s.forConnection()).toBe("c");
    expect(asked).toEqual([{ reason: "connect" }, { reason: "connect" }, { reason: "connect" }]);
  });

  it("asks for a replacement of a refused token, once for concurrent refusals", async () => {
    const { fn, asked } = provider(["old", "new"]);
    const s = new TokenSource({ provider: fn });
    expect(await s.forConnection()).toBe("old");
    const [a, b] = await Promise.all([s.replace("old"), s.replace("old")]);
    expect([a, b]).toEqual(["new", "new"]);
    expect(asked[1]).toEqual({ reason: "rejected", rejected: "old" });
    expect(asked).toHaveLength(2);
    // The replacement is used by the next connection without asking again.
    expect(await s.forConnection()).toBe("new");
    expect(asked).toHaveLength(2);
    // A refusal of a token already replaced gets the newer one.
    expect(await s.replace("old")).toBe("new");
    expect(asked).toHaveLength(2);
  });

  it("gives up when the provider hands back the refused token, or fails", async () => {
    const same = new TokenSource({ provider: async () => "x" });
    await same.forConnection();
    expect(await failure(same.replace("x"))).toBe("rejected");
    const failing = new TokenSource({
      provider: async () => {
        throw new Error("signed out");
      },
    });
    expect(await failure(failing.current())).toBe("provider-failed");
    const e = await failing.forConnection().catch((err: unknown) => err);
    expect(e).toBeInstanceOf(AuthFailure);
    expect((e as Error).message).toBe("token provider failed: signed out");
    const throwsString = new TokenSource({
      provider: () => {
        throw "nope";
      },
    });
    expect(((await throwsString.current().catch((err: unknown) => err)) as Error).message).toBe(
      "token provider failed: nope",
    );
  });

  it("stops after MAX_TOKEN_REFRESHES refused replacements in a row; an accepted token resets the count", async () => {
    let n = 0;
    const s = new TokenSource({ provider: async () => `t${n++}` });
    let t = await s.forConnection();
    for (let i = 0; i < MAX_TOKEN_REFRESHES; i++) t = await s.replace(t);
    expect(t).toBe(`t${MAX_TOKEN_REFRESHES}`);
    expect(await failure(s.replace(t))).toBe("rejected");
    s.accepted();
    expect(await s.replace(t)).toBe(`t${MAX_TOKEN_REFRESHES + 1}`);
  });

  it("starts over after reset()", async () => {
    const { fn, asked } = provider(["a", "b", "c"]);
    const s = new TokenSource({ provider: fn });
    await s.forConnection();
    await s.replace("a");
    s.reset();
    expect(await s.forConnection()).toBe("c");
    expect(asked.map((r) => r.reason)).toEqual(["connect", "rejected", "connect"]);
  });
});
