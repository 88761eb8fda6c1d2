// @vitest-environment node
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ClientFrameSchema, ServerFrameSchema, decodeServerFrame, encodeClientFrame } from "../src/protocol.js";

describe("wire encodings", () => {
  const frame = create(ClientFrameSchema, {
    requestId: 9007199254740993n,
    kind: { case: "subscribe", value: { room: "lobby", resumeAfterRev: 42n } },
  });

  it("JSON: lowerCamelCase names and 64-bit integers as decimal strings", () => {
    const text = encodeClientFrame(frame, "json");
    expect(typeof text).toBe("string");
    expect(JSON.parse(text as string)).toEqual({
      requestId: "9007199254740993",
      subscribe: { room: "lobby", resumeAfterRev: "42" },
    });
  });

  it("decodes server frames in JSON (enum names or numbers, either field naming) and binary", () => {
    const a = decodeServerFrame(
      JSON.stringify({ requestId: "3", event: { type: "EVENT_TYPE_EDITED", message: { room: "lobby", seq: "7", rev: "12" } } }),
    );
    expect(a.requestId).toBe(3n);
    expect(a.kind.case).toBe("event");
    if (a.kind.case === "event") {
      expect(a.kind.value.type).toBe(2);
      expect(a.kind.value.message?.rev).toBe(12n);
    }
    const b = decodeServerFrame(JSON.stringify({ request_id: 4, error: { code: 4, detail: "no room", fatal: false } }));
    expect(b.requestId).toBe(4n);
    expect(b.kind.case === "error" && b.kind.value.code).toBe(4);
    const bin = encodeClientFrame(frame, "proto") as Uint8Array;
    expect(bin).toBeInstanceOf(Uint8Array);
    expect(() => decodeServerFrame(new Uint8Array([0xff, 0xff, 0xff]).buffer)).toThrow();
    expect(() => decodeServerFrame("{not json")).toThrow();
  });

  it("decodes a frame from an ArrayBuffer or any view of one, and nothing else", () => {
    const pong = create(ServerFrameSchema, { requestId: 5n, kind: { case: "pong", value: { nonce: 9n } } });
    const bytes = toBinary(ServerFrameSchema, pong);
    const padded = new Uint8Array(bytes.length + 6);
    padded.set(bytes, 3);
    const views = [
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      padded.subarray(3, 3 + bytes.length),
      new DataView(padded.buffer, 3, bytes.length),
    ];
    for (const v of views) {
      const f = decodeServerFrame(v);
      expect(f.requestId).toBe(5n);
      expect(f.kind.case === "pong" && f.kind.value.nonce).toBe(9n);
    }
    expect(() => decodeServerFrame(42)).toThrow("parley: unexpected WebSocket message type");
    expect(() => decodeServerFrame(null)).toThrow(TypeError);
  });

  it("ignores JSON fields it does not know (a newer server)", () => {
    const f = decodeServerFrame(JSON.stringify({ requestId: "1", pong: { nonce: "2", later: true }, alsoLater: 1 }));
    expect(f.kind.case === "pong" && f.kind.value.nonce).toBe(2n);
  });
});
