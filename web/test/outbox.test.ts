// @vitest-environment node
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { Outbox, newClientMsgId } from "../src/outbox.js";
import { MessageSchema } from "../src/protocol.js";

describe("outbox", () => {
  it("keeps sends pending in order until settled", () => {
    const o = new Outbox();
    const a = o.add("lobby", "one");
    const b = o.add("lobby", "two");
    o.add("other", "three");
    expect(o.pending("lobby").map((p) => p.body)).toEqual(["one", "two"]);
    expect(o.size).toBe(3);
    o.sent(a.clientMsgId, 7n);
    expect(o.byRequestId(7n)).toBe(a);
    expect(o.settle(a.clientMsgId)).toBe(a);
    expect(o.byRequestId(7n)).toBeUndefined();
    expect(o.pending("lobby")).toEqual([b]);
  });

  it("resends under the same clientMsgId with a new request id", () => {
    const o = new Outbox();
    const a = o.add("lobby", "hello");
    o.sent(a.clientMsgId, 1n);
    o.connectionLost();
    expect(o.byRequestId(1n)).toBeUndefined();
    o.sent(a.clientMsgId, 9n);
    expect(o.byRequestId(9n)?.clientMsgId).toBe(a.clientMsgId);
    expect(a.attempts).toBe(2);
  });

  it("settles a send seen stored (lost ack) only for its own author and room", () => {
    const o = new Outbox();
    const a = o.add("lobby", "hello");
    const stored = (room: string, author: string) =>
      create(MessageSchema, { room, seq: 1n, rev: 1n, clientMsgId: a.clientMsgId, author: { id: author } });
    expect(o.settleStored(stored("lobby", "someone-else"), "me")).toBeUndefined();
    expect(o.settleStored(stored("other", "me"), "me")).toBeUndefined();
    expect(o.settleStored(stored("lobby", "me"), "me")).toBe(a);
    expect(o.size).toBe(0);
  });

  it("refuses a clientMsgId twice and makes unique ids", () => {
    const o = new Outbox();
    o.add("lobby", "x", "id-1");
    expect(() => o.add("lobby", "y", "id-1")).toThrow();
    const ids = new Set(Array.from({ length: 1000 }, () => newClientMsgId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(() => o.add("lobby", "y", "id-1")).toThrow("outbox: duplicate clientMsgId id-1");
  });

  it("maps only the latest request id of an entry, and forgets it when settled", () => {
    const o = new Outbox();
    const a = o.add("lobby", "hello", "a", 5);
    expect(a).toEqual({ clientMsgId: "a", room: "lobby", body: "hello", createdAtMs: 5, attempts: 0, requestId: 0n });
    expect(o.byRequestId(0n)).toBeUndefined();
    o.sent("a", 1n);
    o.sent("a", 2n); // a transient refusal, tried again on the same connection
    expect(o.byRequestId(1n)).toBeUndefined();
    expect(o.byRequestId(2n)).toBe(a);
    o.sent("nobody", 3n);
    expect(o.byRequestId(3n)).toBeUndefined();
    expect(o.settle("a")).toBe(a);
    expect(o.byRequestId(2n)).toBeUndefined();
    expect(o.settle("a")).toBeUndefined();
    expect(o.get("a")).toBeUndefined();
  });

  it("settles a stored copy before the user is known, or one without an author", () => {
    const o = new Outbox();
    const a = o.add("lobby", "hello", "a");
    const b = o.add("lobby", "bye", "b");
    expect(o.settleStored(create(MessageSchema, { room: "lobby", clientMsgId: "a", author: { id: "x" } }), null)).toBe(a);
    expect(o.settleStored(create(MessageSchema, { room: "lobby", clientMsgId: "b" }), "me")).toBe(b);
    expect(o.settleStored(create(MessageSchema, { room: "lobby", clientMsgId: "zzz" }), "me")).toBeUndefined();
    expect(o.pending()).toEqual([]);
  });
});
