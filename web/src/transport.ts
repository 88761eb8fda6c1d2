// transport: one WebSocket to the gateway's /v1/stream speaking ClientFrame /
// ServerFrame in the parley.v1.proto (binary) or parley.v1.json subprotocol.
// It reports exactly one close per connection, also when the caller abandons a
// link that is silently dead (a close handshake on such a link would never
// complete, so the transport detaches from the socket at once).
import {
  CLOSE_BAD_UTF8,
  CLOSE_NORMAL,
  CLOSE_PROTOCOL_ERROR,
  SCRIPT_CLOSE_MAX,
  SCRIPT_CLOSE_MIN,
} from "./constants.js";
import type { ClientFrame, ServerFrame } from "./gen/parley/v1/stream_pb.js";
import { SUBPROTOCOL, type WireFormat, decodeServerFrame, encodeClientFrame } from "./protocol.js";

/** The subset of the WebSocket constructor the transport uses. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly protocol: string;
  send(data: string | ArrayBufferLike | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => unknown) | null;
  onmessage: ((ev: { data: unknown }) => unknown) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => unknown) | null;
  onerror: ((ev: unknown) => unknown) | null;
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface TransportHandlers {
  onOpen(): void;
  onFrame(frame: ServerFrame): void;
  /** Called once, with the close code (the caller's own code when abandoned). */
  onClose(code: number, reason: string): void;
}

export interface TransportOptions {
  url: string;
  format?: WireFormat;
  WebSocket?: WebSocketConstructor;
}

/** WebSocket.OPEN (the global may be missing in Node). */
const OPEN = 1;

export class Transport {
  readonly format: WireFormat;
  /** The socket, until the close is reported (then null, handlers detached). */
  private ws: WebSocketLike | null;
  private readonly handlers: TransportHandlers;

  constructor(options: TransportOptions, handlers: TransportHandlers) {
    this.format = options.format ?? "proto";
    this.handlers = handlers;
    const Ctor =
      options.WebSocket ?? (globalThis.WebSocket as unknown as WebSocketConstructor | undefined);
    if (!Ctor) throw new Error("parley: no WebSocket implementation available");
    const ws = new Ctor(options.url, SUBPROTOCOL[this.format]);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      // A server that names no subprotocol is accepted; one that picked another is not.
      if (ws.protocol && ws.protocol !== SUBPROTOCOL[this.format]) {
        this.abandon(CLOSE_PROTOCOL_ERROR, `server chose subprotocol ${ws.protocol}`);
        return;
      }
      this.handlers.onOpen();
    };
    ws.onmessage = (ev) => {
      let frame: ServerFrame;
      try {
        frame = decodeServerFrame(ev.data);
      } catch {
        this.abandon(CLOSE_BAD_UTF8, "malformed server frame");
        return;
      }
      // A batch (SessionOptions.batch) is its frames, in order, as if each
      // had come alone; batches never nest. None is reported once a frame
      // made the caller abandon the connection.
      if (frame.kind.case === "batch") {
        for (const f of frame.kind.value.frames) {
          if (this.ws !== ws) return;
          this.handlers.onFrame(f);
        }
        return;
      }
      this.handlers.onFrame(frame);
    };
    ws.onclose = (ev) => {
      // Once only, even from an implementation that kept the handler.
      if (this.detach()) this.handlers.onClose(ev.code, ev.reason);
    };
    // An error is always followed by a close event; nothing to do here.
    ws.onerror = () => {};
  }

  get isOpen(): boolean {
    return this.ws?.readyState === OPEN;
  }

  /** Sends one frame; returns false when the socket is not open (or refused it). */
  send(frame: ClientFrame): boolean {
    const ws = this.ws;
    if (ws?.readyState !== OPEN) return false;
    try {
      ws.send(encodeClientFrame(frame, this.format));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Closes the socket and reports the close now, with `code`, without
   * waiting for the server's half of the handshake (which a dead link never
   * delivers). Does nothing once the close was reported.
   */
  abandon(code = CLOSE_NORMAL, reason = ""): void {
    const ws = this.detach();
    if (!ws) return;
    // Browsers only accept 1000 or 3000-4999 from scripts.
    const scriptable = code === CLOSE_NORMAL || (code >= SCRIPT_CLOSE_MIN && code <= SCRIPT_CLOSE_MAX);
    try {
      ws.close(scriptable ? code : CLOSE_NORMAL, reason);
    } catch {
      /* already closing */
    }
    this.handlers.onClose(code, reason);
  }

  /** Forgets the socket and its handlers; returns it, or null if already done. */
  private detach(): WebSocketLike | null {
    const ws = this.ws;
    if (!ws) return null;
    this.ws = null;
    ws.onopen = null;
    ws.onmessage = null;
    ws.onclose = null;
    ws.onerror = null;
    return ws;
  }
}
