// @vitest-environment node
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ClientFrameSchema, decodeServerFrame, encodeClientFrame } from "../src/protocol.js";

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
});
