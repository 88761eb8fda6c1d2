// limits: what the server lets a client send, and the check of one message
// against it before it is sent. The core states its body limit with every
// Room (Room.maxBodyBytes, --max-body); the gateway states its frame size and
// token bucket in Authenticated.limits (--max-frame, --rate, --burst). Until
// they are stated the client uses the gateway's defaults; a body limit that
// was never stated is not checked (the server still refuses what is too long).
import {
  DEFAULT_FRAME_BURST,
  DEFAULT_FRAME_RATE,
  DEFAULT_MAX_FRAME_BYTES,
} from "./constants.js";
import type { Limits as LimitsFrame } from "./gen/parley/v1/stream_pb.js";

/** The gateway's limits on one WebSocket session. */
export interface Limits {
  /** Largest WebSocket message, in bytes (close 1009 above it). */
  maxFrameBytes: number;
  /** Token bucket over every frame the client sends: refill per second and size (close 4429). */
  frameRate: number;
  frameBurst: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = {
  maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  frameRate: DEFAULT_FRAME_RATE,
  frameBurst: DEFAULT_FRAME_BURST,
};

/** `base` with every limit the frame states (a 0 states nothing). */
export function mergeLimits(base: Limits, stated: LimitsFrame | undefined): Limits {
  if (!stated) return base;
  return {
    maxFrameBytes: stated.maxFrameBytes > 0 ? stated.maxFrameBytes : base.maxFrameBytes,
    frameRate: stated.frameRate > 0 ? stated.frameRate : base.frameRate,
    frameBurst: stated.frameBurst >= 1 ? stated.frameBurst : base.frameBurst,
  };
}

/** Why a message cannot be sent as it is. */
export interface SendProblem {
  code: "BODY_EMPTY" | "BODY_TOO_LONG";
  detail: string;
  /** The limit it broke, in bytes. */
  limit?: number;
  /** Its size, in the same unit. */
  size?: number;
}

const encoder = new TextEncoder();

/** Bytes of UTF-8, the unit the core counts bodies in. */
export function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

/**
 * Checks a body against the core's body limit (null: not stated) and its
 * encoded publish frame against the gateway's frame limit.
 */
export function checkBody(body: string, maxBodyBytes: number | null, frameBytes: number, maxFrameBytes: number): SendProblem | null {
  if (body.trim() === "") return { code: "BODY_EMPTY", detail: "the message is empty" };
  const size = utf8Length(body);
  if (maxBodyBytes !== null && size > maxBodyBytes) {
    return { code: "BODY_TOO_LONG", detail: `${size} bytes; the limit is ${maxBodyBytes}`, limit: maxBodyBytes, size };
  }
  if (frameBytes > maxFrameBytes) {
    return {
      code: "BODY_TOO_LONG",
      detail: `${frameBytes} bytes on the wire; the gateway's frame limit is ${maxFrameBytes}`,
      limit: maxFrameBytes,
      size: frameBytes,
    };
  }
  return null;
}
