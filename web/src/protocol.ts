// protocol: the parley.v1 wire types the package speaks, re-exported from the
// generated code in gen/, plus the two WebSocket subprotocol encodings.
import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import {
  type ClientFrame,
  ClientFrameSchema,
  type ServerFrame,
  ServerFrameSchema,
} from "./gen/parley/v1/stream_pb.js";

export * from "./gen/parley/v1/message_pb.js";
export * from "./gen/parley/v1/stream_pb.js";
export * from "./gen/parley/v1/history_pb.js";
export * from "./gen/parley/v1/rooms_pb.js";
export { create };

/** Wire format on the WebSocket: binary protobuf or proto3 JSON text. */
export type WireFormat = "proto" | "json";

export const SUBPROTOCOL: Record<WireFormat, string> = {
  proto: "parley.v1.proto",
  json: "parley.v1.json",
};

export function encodeClientFrame(frame: ClientFrame, format: WireFormat): Uint8Array | string {
  return format === "proto"
    ? toBinary(ClientFrameSchema, frame)
    : toJsonString(ClientFrameSchema, frame);
}

/** Decodes one WebSocket message; throws on a malformed frame. */
export function decodeServerFrame(data: unknown): ServerFrame {
  if (typeof data === "string") {
    return fromJsonString(ServerFrameSchema, data, { ignoreUnknownFields: true });
  }
  if (data instanceof ArrayBuffer) return fromBinary(ServerFrameSchema, new Uint8Array(data));
  if (ArrayBuffer.isView(data)) {
    return fromBinary(
      ServerFrameSchema,
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
  }
  throw new TypeError("parley: unexpected WebSocket message type");
}
