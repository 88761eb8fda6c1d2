// @vitest-environment node
import { describe, expect, it } from "vitest";
import { DEFAULT_FRAME_BURST, DEFAULT_FRAME_RATE, DEFAULT_MAX_FRAME_BYTES } from "../src/constants.js";
import { DEFAULT_LIMITS, checkBody, mergeLimits, utf8Length } from "../src/limits.js";
import { LimitsSchema, create } from "../src/protocol.js";

describe("limits", () => {
  it("defaults to the gateway's own defaults", () => {
    expect(DEFAULT_LIMITS).toEqual({
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      frameRate: DEFAULT_FRAME_RATE,
      frameBurst: DEFAULT_FRAME_BURST,
    });
    expect([DEFAULT_MAX_FRAME_BYTES, DEFAULT_FRAME_RATE, DEFAULT_FRAME_BURST]).toEqual([65_536, 20, 40]);
  });

  it("takes what the server states and keeps the rest", () => {
    const base = { maxFrameBytes: 100, frameRate: 2, frameBurst: 3 };
    expect(mergeLimits(base, undefined)).toBe(base);
    expect(mergeLimits(base, create(LimitsSchema, {}))).toEqual(base);
    expect(mergeLimits(base, create(LimitsSchema, { maxFrameBytes: 7, frameRate: 0.5, frameBurst: 1 }))).toEqual({
      maxFrameBytes: 7,
      frameRate: 0.5,
      frameBurst: 1,
    });
    // A burst under one frame would let nothing through: not a real statement.
    expect(mergeLimits(base, create(LimitsSchema, { frameBurst: 0.5 })).frameBurst).toBe(3);
  });

  it("counts bodies in bytes of UTF-8", () => {
    expect(utf8Length("abc")).toBe(3);
    expect(utf8Length("é")).toBe(2);
    expect(utf8Length("😀")).toBe(4);
  });

  it("checks emptiness, then the body limit, then the frame", () => {
    expect(checkBody(" \n\t ", 10, 5, 100)).toEqual({ code: "BODY_EMPTY", detail: "the message is empty" });
    expect(checkBody("0123456789", 10, 20, 100)).toBeNull();
    expect(checkBody("0123456789x", 10, 20, 100)).toEqual({
      code: "BODY_TOO_LONG",
      detail: "11 bytes; the limit is 10",
      limit: 10,
      size: 11,
    });
    expect(checkBody("0123456789x", null, 20, 100)).toBeNull();
    expect(checkBody("hi", null, 100, 100)).toBeNull();
    expect(checkBody("hi", null, 101, 100)).toEqual({
      code: "BODY_TOO_LONG",
      detail: "101 bytes on the wire; the gateway's frame limit is 100",
      limit: 100,
      size: 101,
    });
  });
});
