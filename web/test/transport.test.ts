// @vitest-environment node
import { describe, expect, it } from "vitest";
import { CLOSE_BAD_UTF8, CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR } from "../src/constants.js";
import { toBinary } from "@bufbuild/protobuf";
import { ClientFrameSchema, ServerFrameSchema, create } from "../src/protocol.js";
import { Transport, type WebSocketLike } from "../src/transport.js";

/** A bare WebSocket double: the test drives its events by hand. */
class RawSocket implements WebSocketLike {
  static last: RawSocket;
  binaryType = "blob";
  readyState = 0;
  protocol = "";
  sent: unknown[] = [];
  closed: Array<[number | undefined, string | undefined]> = [];
  throwOnSend = false;
  throwOnClose = false;
  onopen: ((ev: unknown) => unknown) | null = null;
  onmessage: ((ev: { data: unknown }) => unknown) | null = null;
  onclose: ((ev: { code: number; reason: string }) => unknown) | null = null;
  onerror: ((ev: unknown) => unknown) | null = null;
  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    RawSocket.last = this;
  }
  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    if (this.throwOnSend) throw new Error("InvalidStateError");
    this.sent.push(data);
  }
  close(code?: number, reason?: string): void {
    this.closed.push([code, reason]);
    if (this.throwOnClose) throw new Error("SyntaxError");
  }
  open(protocol: string): void {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }
}

function make(format?: "proto" | "json") {
  const events: string[] = [];
  const t = new Transport(
    { url: "ws://gw.test/v1/stream", WebSocket: RawSocket, ...(format ? { format } : {}) },
    {
      onOpen: () => events.push("open"),
      onFrame: (f) => events.push(`frame:${f.kind.case}`),
      onClose: (code, reason) => events.push(`close:${code}:${reason}`),
    },
  );
  return { t, ws: RawSocket.last, events };
}

const ping = create(ClientFrameSchema, { requestId: 1n, kind: { case: "ping", value: { nonce: 1n } } });
const pongBytes = toBinary(ServerFrameSchema, create(ServerFrameSchema, { kind: { case: "pong", value: { nonce: 1n } } }));

describe("transport", () => {
  it("hands a batch on as its frames, in order, and none after one made the caller abandon", () => {
    const frames: string[] = [];
    let t: Transport | null = null;
    t = new Transport(
      { url: "ws://gw.test/v1/stream", WebSocket: RawSocket },
      {
        onOpen: () => {},
        onFrame: (f) => {
          frames.push(f.kind.case ?? "");
          if (f.kind.case === "error") t?.abandon(4000, "fatal");
        },
        onClose: (code) => frames.push(`close:${code}`),
      },
    );
    const ws = RawSocket.last;
    ws.open("parley.v1.proto");
    const batch = (kinds: ("pong" | "error")[]) =>
      toBinary(
        ServerFrameSchema,
        create(ServerFrameSchema, {
          kind: {
            case: "batch",
            value: {
              frames: kinds.map((k) =>
                k === "pong" ? { kind: { case: "pong" as const, value: { nonce: 1n } } } : { kind: { case: "error" as const, value: { fatal: true } } },
              ),
            },
          },
        }),
      );
    const data = (b: Uint8Array) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    ws.onmessage?.({ data: data(batch(["pong", "pong"])) });
    expect(frames).toEqual(["pong", "pong"]);
    const keep = ws.onmessage;
    keep?.({ data: data(batch(["pong", "error", "pong"])) });
    expect(frames).toEqual(["pong", "pong", "pong", "error", "close:4000"]);
  });

  it("offers the subprotocol of its format (binary by default) and reads binary as ArrayBuffer", () => {
    const a = make();
    expect(a.t.format).toBe("proto");
    expect(a.ws.protocols).toBe("parley.v1.proto");
    expect(a.ws.binaryType).toBe("arraybuffer");
    expect(make("json").ws.protocols).toBe("parley.v1.json");
  });

  it("opens when the server agrees on the subprotocol, or names none", () => {
    const a = make();
    a.ws.open("parley.v1.proto");
    expect(a.events).toEqual(["open"]);
    expect(a.t.isOpen).toBe(true);
    const b = make();
    b.ws.open("");
    expect(b.events).toEqual(["open"]);
  });

  it("closes 1002 when the server picked another subprotocol, and never reports it open", () => {
    const { ws, events, t } = make();
    ws.open("parley.v1.json");
    expect(events).toEqual([`close:${CLOSE_PROTOCOL_ERROR}:server chose subprotocol parley.v1.json`]);
    expect(ws.closed).toEqual([[CLOSE_NORMAL, "server chose subprotocol parley.v1.json"]]);
    expect(t.isOpen).toBe(false);
  });

  it("decodes frames, and closes 1007 on one it cannot decode", () => {
    const { ws, events } = make();
    ws.open("parley.v1.proto");
    ws.onmessage?.({ data: pongBytes.buffer.slice(0) });
    ws.onmessage?.({ data: 42 });
    expect(events).toEqual(["open", "frame:pong", `close:${CLOSE_BAD_UTF8}:malformed server frame`]);
    expect(ws.onmessage).toBeNull();
  });

  it("sends only while open, and reports a refused send", () => {
    const { ws, t } = make();
    expect(t.send(ping)).toBe(false); // still connecting
    ws.open("parley.v1.proto");
    expect(t.send(ping)).toBe(true);
    expect(ws.sent).toHaveLength(1);
    expect(ws.sent[0]).toBeInstanceOf(Uint8Array);
    ws.throwOnSend = true;
    expect(t.send(ping)).toBe(false);
    ws.throwOnSend = false;
    ws.readyState = 2; // closing
    expect(t.send(ping)).toBe(false);
    expect(t.isOpen).toBe(false);
    ws.readyState = 1;
    t.abandon();
    expect(t.send(ping)).toBe(false);
    expect(ws.sent).toHaveLength(1);
    const j = make("json");
    j.ws.open("parley.v1.json");
    j.t.send(ping);
    expect(typeof j.ws.sent[0]).toBe("string");
  });

  it("reports exactly one close: the server's, or the caller's own code when abandoned", () => {
    const a = make();
    a.ws.open("parley.v1.proto");
    const handler = a.ws.onclose;
    handler?.({ code: 4503, reason: "upstream" });
    handler?.({ code: 1006, reason: "" });
    a.t.abandon(4000, "late");
    expect(a.events).toEqual(["open", "close:4503:upstream"]);
    expect(a.ws.closed).toEqual([]);
    expect([a.ws.onopen, a.ws.onmessage, a.ws.onclose, a.ws.onerror]).toEqual([null, null, null, null]);

    const b = make();
    b.ws.open("parley.v1.proto");
    b.t.abandon(4000, "heartbeat timeout");
    b.t.abandon(4001, "again");
    expect(b.events).toEqual(["open", "close:4000:heartbeat timeout"]);
    expect(b.ws.closed).toEqual([[4000, "heartbeat timeout"]]);
  });

  it("closes with a code scripts may send, and still reports its own", () => {
    const codes: Array<[number, number]> = [];
    for (const code of [1000, 2999, 3000, 4000, 4999, 5000, 1007, 1002]) {
      const { ws, t } = make();
      ws.open("parley.v1.proto");
      t.abandon(code, "x");
      codes.push([code, ws.closed[0]?.[0] as number]);
    }
    expect(codes).toEqual([
      [1000, 1000],
      [2999, 1000],
      [3000, 3000],
      [4000, 4000],
      [4999, 4999],
      [5000, 1000],
      [1007, 1000],
      [1002, 1000],
    ]);
    const d = make();
    d.t.abandon();
    expect(d.ws.closed).toEqual([[1000, ""]]);
    expect(d.events).toEqual(["close:1000:"]);
  });

  it("reports the close even when the socket refuses to close", () => {
    const { ws, t, events } = make();
    ws.throwOnClose = true;
    t.abandon(4000, "gone");
    expect(events).toEqual(["close:4000:gone"]);
  });

  it("needs a WebSocket implementation", () => {
    const saved = globalThis.WebSocket;
    try {
      (globalThis as { WebSocket?: unknown }).WebSocket = undefined;
      expect(() => new Transport({ url: "ws://x" }, { onOpen() {}, onFrame() {}, onClose() {} })).toThrow(
        "parley: no WebSocket implementation available",
      );
      (globalThis as { WebSocket?: unknown }).WebSocket = RawSocket;
      new Transport({ url: "ws://x/y" }, { onOpen() {}, onFrame() {}, onClose() {} });
      expect(RawSocket.last.url).toBe("ws://x/y");
    } finally {
      (globalThis as { WebSocket?: unknown }).WebSocket = saved;
    }
  });
});
