// Unit-test doubles: an in-memory room store with the gateway's rules (seq,
// rev, idempotent publish), a WebSocket double speaking the wire contract over
// it, and a fetch double serving its REST view. The end-to-end tests in
// tests/browser/ use the real gateway; these only drive the client's logic.
import { create, fromBinary, toBinary, toJson, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ErrorCode,
  type Message,
  MessageSchema,
  ListMessagesResponseSchema,
  type ClientFrame,
  ClientFrameSchema,
  EventType,
  ServerFrameSchema,
} from "../src/protocol.js";
import { CLOSE_UPSTREAM } from "../src/constants.js";
import type { FetchLike } from "../src/history.js";
import type { WebSocketLike } from "../src/transport.js";

export class FakeStore {
  readonly room: string;
  private readonly bySeq = new Map<bigint, Message>();
  headSeq = 0n;
  headRev = 0n;
  /** Every stored publish, to count how often a clientMsgId was stored. */
  readonly stored: Message[] = [];
  readonly listeners = new Set<(m: Message, type: EventType) => void>();

  constructor(room = "lobby") {
    this.room = room;
  }

  publish(authorId: string, clientMsgId: string, body: string): { message: Message; duplicate: boolean } {
    for (const m of this.bySeq.values()) {
      if (m.clientMsgId === clientMsgId && m.author?.id === authorId) return { message: m, duplicate: true };
    }
    this.headSeq += 1n;
    this.headRev += 1n;
    const m = create(MessageSchema, {
      room: this.room,
      seq: this.headSeq,
      rev: this.headRev,
      clientMsgId,
      author: { id: authorId, displayName: authorId },
      body,
      createdAtMs: 1_700_000_000_000n + this.headSeq,
    });
    this.bySeq.set(m.seq, m);
    this.stored.push(m);
    for (const l of this.listeners) l(m, EventType.CREATED);
    return { message: m, duplicate: false };
  }

  edit(seq: bigint, body: string): Message {
    const old = this.bySeq.get(seq);
    if (!old) throw new Error("no such seq");
    this.headRev += 1n;
    const m = create(MessageSchema, { ...old, rev: this.headRev, body, editedAtMs: 1n });
    this.bySeq.set(seq, m);
    for (const l of this.listeners) l(m, EventType.EDITED);
    return m;
  }

  remove(seq: bigint): Message {
    const old = this.bySeq.get(seq);
    if (!old) throw new Error("no such seq");
    this.headRev += 1n;
    const m = create(MessageSchema, { ...old, rev: this.headRev, body: "", deleted: true });
    this.bySeq.set(seq, m);
    for (const l of this.listeners) l(m, EventType.DELETED);
    return m;
  }

  all(): Message[] {
    return [...this.bySeq.values()].sort((a, b) => (a.seq < b.seq ? -1 : 1));
  }

  changedAfter(rev: bigint): Message[] {
    return [...this.bySeq.values()].filter((m) => m.rev > rev).sort((a, b) => (a.rev < b.rev ? -1 : 1));
  }

  /** The REST listing, as the gateway defines it. */
  list(q: URLSearchParams): { messages: Message[]; hasMore: boolean } {
    const limit = Number(q.get("limit") ?? "50") || 50;
    if (q.has("after")) {
      const all = this.changedAfter(BigInt(q.get("after") as string));
      return { messages: all.slice(0, limit), hasMore: all.length > limit };
    }
    let all = this.all();
    if (q.has("before")) {
      const before = BigInt(q.get("before") as string);
      all = all.filter((m) => m.seq < before);
    }
    return { messages: all.slice(-limit), hasMore: all.length > limit };
  }
}

type FrameInit = MessageInitShape<typeof ServerFrameSchema>;

/**
 * A WebSocket double connected to a FakeStore through a tiny in-test gateway.
 * Switches: `blackhole` drops everything both ways without closing (a dead
 * link); `deafClient` drops only server → client traffic (publishes reach the
 * store, acks and events are lost); `losePublishes` makes the next N
 * publishes end the connection before they are stored (a core restart).
 */
export class FakeGateway {
  readonly store: FakeStore;
  readonly sockets: FakeSocket[] = [];
  blackhole = false;
  deafClient = false;
  losePublishes = 0;
  /** The next N publishes are refused with a transient error. */
  busyPublishes = 0;
  refuse = false;
  /** Every frame any client sent, in order. */
  readonly received: ClientFrame[] = [];

  constructor(store = new FakeStore()) {
    this.store = store;
    store.listeners.add((m, type) => {
      for (const s of this.sockets) {
        if (s.subscribed.has(m.room)) s.push({ kind: { case: "event", value: { type, message: m } } });
      }
    });
  }

  get WebSocket(): new (url: string, protocols?: string | string[]) => WebSocketLike {
    const gw = this;
    return class extends FakeSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(gw, url, protocols);
      }
    };
  }

  /** Serves GET /v1/rooms/{room}/messages from the store. */
  readonly fetch: FetchLike = async (input) => {
    const u = new URL(input);
    if (this.blackhole || this.deafClient || this.refuse) {
      // Like a dead link, only faster: the client's timeout would fire.
      throw new TypeError("Failed to fetch");
    }
    const m = /^\/v1\/rooms\/([^/]+)\/messages$/.exec(u.pathname);
    if (!m) return jsonResponse(404, { code: "NOT_FOUND", detail: u.pathname });
    if (decodeURIComponent(m[1] as string) !== this.store.room) {
      return jsonResponse(404, { code: "ROOM_NOT_FOUND", detail: "no room" });
    }
    const page = this.store.list(u.searchParams);
    const body = create(ListMessagesResponseSchema, {
      ...page,
      room: { name: this.store.room, headSeq: this.store.headSeq, headRev: this.store.headRev },
    });
    return jsonResponse(200, toJson(ListMessagesResponseSchema, body));
  };

  /** The socket most recently opened. */
  get last(): FakeSocket {
    const s = this.sockets[this.sockets.length - 1];
    if (!s) throw new Error("no socket opened");
    return s;
  }

  /** How many times the store holds a message with this clientMsgId. */
  storedCount(clientMsgId: string): number {
    return this.store.stored.filter((m) => m.clientMsgId === clientMsgId).length;
  }
}

function jsonResponse(status: number, body: unknown): Response {
  const text = JSON.stringify(body);
  return { ok: status >= 200 && status < 300, status, text: async () => text } as unknown as Response;
}

export class FakeSocket implements WebSocketLike {
  binaryType = "blob";
  readyState = 0;
  protocol = "";
  onopen: ((ev: unknown) => unknown) | null = null;
  onmessage: ((ev: { data: unknown }) => unknown) | null = null;
  onclose: ((ev: { code: number; reason: string }) => unknown) | null = null;
  onerror: ((ev: unknown) => unknown) | null = null;
  readonly subscribed = new Set<string>();
  user = "";
  closedByClient: number | null = null;
  private readonly gw: FakeGateway;

  constructor(gw: FakeGateway, readonly url: string, protocols?: string | string[]) {
    this.gw = gw;
    gw.sockets.push(this);
    const offered = typeof protocols === "string" ? [protocols] : (protocols ?? []);
    setTimeout(() => {
      if (gw.blackhole || gw.deafClient) return; // the handshake never completes
      if (gw.refuse || !offered.includes("parley.v1.proto")) {
        this.readyState = 3;
        this.onclose?.({ code: 1006, reason: "" });
        return;
      }
      this.protocol = "parley.v1.proto";
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }

  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    if (this.readyState !== 1) throw new Error("not open");
    if (this.gw.blackhole) return;
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data as ArrayBuffer);
    const f = fromBinary(ClientFrameSchema, bytes);
    this.gw.received.push(f);
    const k = f.kind;
    switch (k.case) {
      case "authenticate":
        this.user = k.value.token;
        this.push({ requestId: f.requestId, kind: { case: "authenticated", value: { user: { id: this.user, displayName: this.user } } } });
        break;
      case "ping":
        this.push({ requestId: f.requestId, kind: { case: "pong", value: { nonce: k.value.nonce } } });
        break;
      case "subscribe": {
        for (const m of this.gw.store.changedAfter(k.value.resumeAfterRev)) {
          this.push({ kind: { case: "event", value: { type: EventType.CREATED, message: m, replay: true } } });
        }
        this.subscribed.add(k.value.room);
        const s = this.gw.store;
        this.push({ requestId: f.requestId, kind: { case: "subscribed", value: { room: { name: s.room, headSeq: s.headSeq, headRev: s.headRev } } } });
        break;
      }
      case "publish": {
        if (!k.value.body.trim()) {
          this.push({ requestId: f.requestId, kind: { case: "error", value: { code: ErrorCode.BODY_EMPTY, detail: "empty" } } });
          break;
        }
        if (this.gw.busyPublishes > 0) {
          this.gw.busyPublishes--;
          this.push({ requestId: f.requestId, kind: { case: "error", value: { code: ErrorCode.RESOURCE_EXHAUSTED, detail: "busy" } } });
          break;
        }
        if (this.gw.losePublishes > 0) {
          this.gw.losePublishes--;
          setTimeout(() => this.serverClose(CLOSE_UPSTREAM), 0);
          break;
        }
        const r = this.gw.store.publish(this.user, k.value.clientMsgId, k.value.body);
        this.push({ requestId: f.requestId, kind: { case: "ack", value: { clientMsgId: k.value.clientMsgId, message: r.message, duplicate: r.duplicate } } });
        break;
      }
      default:
        break;
    }
  }

  /** Server → client, unless the link is black-holed. */
  push(init: FrameInit): void {
    if (this.readyState !== 1 || this.gw.blackhole || this.gw.deafClient) return;
    const bytes = toBinary(ServerFrameSchema, create(ServerFrameSchema, init));
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    queueMicrotask(() => {
      if (this.readyState === 1) this.onmessage?.({ data: buf });
    });
  }

  close(code = 1000): void {
    if (this.readyState >= 2) return;
    this.closedByClient = code;
    this.readyState = 3;
    this.subscribed.clear();
    // A dead link never completes the close handshake.
    if (!this.gw.blackhole && !this.gw.deafClient) setTimeout(() => this.onclose?.({ code, reason: "" }), 0);
  }

  /** The server ends the connection (e.g. the core went down). */
  serverClose(code: number): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    this.subscribed.clear();
    this.onclose?.({ code, reason: "" });
  }
}

/** A fake window for 'online' / 'offline' events. */
export class FakeNetwork extends EventTarget {
  goOffline(): void {
    this.dispatchEvent(new Event("offline"));
  }
  goOnline(): void {
    this.dispatchEvent(new Event("online"));
  }
}
