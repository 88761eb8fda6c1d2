// client: the headless parley client. It owns one WebSocket to the gateway at
// a time and runs the product's connection procedure:
//
//   history first   each subscribed room loads its newest page over REST and
//                   only then subscribes (resumeAfterRev = the page's headRev);
//   live            events arrive over the WebSocket; state 'live';
//   broken link     a heartbeat timeout, a close, or the browser's 'offline'
//                   event ends the connection at once; state 'offline';
//   retry           at once, then exponential backoff with full jitter;
//   catch up        after re-authenticating, every room reloads what changed
//                   since the last rev it applied (REST ?after=rev), then
//                   subscribes from there; the stream replays anything newer;
//   live again      once every room confirmed its subscription, unacked sends
//                   go out again with their original clientMsgId.
import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { type Clock, type TimerHandle, systemClock } from "./clock.js";
import {
  CLOSE_CLIENT_GAVE_UP,
  CLOSE_NORMAL,
  CLOSE_UNAUTH,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_MAX_FRAME_BYTES,
  HTTP_UNAUTHORIZED,
  SEND_RETRY_MAX_STEP,
  SEND_RETRY_MIN_DELAY_MS,
} from "./constants.js";
import { Emitter } from "./emitter.js";
import { type Author, ErrorCode, type Message } from "./gen/parley/v1/message_pb.js";
import {
  ClientFrameSchema,
  type Error as ErrorFrame,
  type Event as EventFrame,
  type ServerFrame,
} from "./gen/parley/v1/stream_pb.js";
import { Heartbeat } from "./heartbeat.js";
import { type FetchLike, HistoryClient, HttpError } from "./history.js";
import { Outbox, type Pending } from "./outbox.js";
import { type WireFormat, encodeClientFrame } from "./protocol.js";
import { type Change, RoomState } from "./room-state.js";
import { Transport, type WebSocketConstructor } from "./transport.js";

export type ConnectionState = "connecting" | "live" | "offline" | "catching-up" | "closed";

export interface ConnectOptions {
  /** The gateway's base URL ("https://chat.example.com"); ws(s):// works too. */
  url: string;
  /** A bearer token (JWT). Either this or getToken is required. */
  token?: string;
  /** Called before every connection and REST call, so tokens can be renewed. */
  getToken?: () => string | Promise<string>;
  /** WebSocket subprotocol: binary protobuf (default) or JSON. */
  format?: WireFormat;
  /** Messages in the first history page of a room. Default 50. */
  historyLimit?: number;
  /** Ping period and pong deadline. Default 5000 ms each. */
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  /** Open + authenticate must finish within this time. Default 8000 ms. */
  connectTimeoutMs?: number;
  /** REST calls are aborted after this time. Default 10 000 ms. */
  requestTimeoutMs?: number;
  /**
   * The gateway's WebSocket message limit (it closes with 1009 above it).
   * A send whose frame would be larger is refused at once instead of
   * breaking the connection on every retry. Default 65 536 bytes.
   */
  maxFrameBytes?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  WebSocket?: WebSocketConstructor;
  fetch?: FetchLike;
  /**
   * Where to listen for 'online'/'offline' (default: `window` when present);
   * null turns it off.
   */
  network?: Pick<EventTarget, "addEventListener" | "removeEventListener"> | null;
}

export interface StateEvent {
  state: ConnectionState;
  previous: ConnectionState;
  /** Set with 'offline': when the next attempt starts, in ms. */
  retryInMs?: number;
  /** Why the connection ended, with 'offline'. */
  reason?: string;
}

export interface ParleyEvents {
  state: StateEvent;
  /** A page of history was applied (the first one, or an older one). */
  history: { room: string; messages: Message[]; hasOlder: boolean };
  /** A new message (or one first seen as a tombstone is not reported here). */
  message: { room: string; message: Message; replay: boolean };
  edit: { room: string; message: Message; previous: Message };
  delete: { room: string; message: Message; previous?: Message };
  /** A send was queued; it is pending until 'ack'. */
  pending: { room: string; pending: Pending };
  /** A pending send was stored (ack, or seen stored after a lost ack). */
  ack: { room: string; pending: Pending; message?: Message; duplicate: boolean };
  /** The server refused a send for good; it is no longer pending. */
  "send-error": { room: string; pending: Pending; code: string; detail: string };
  /** An error the server reported, or a REST failure. */
  error: { room?: string; code: string; detail: string; fatal: boolean };
  authenticated: { user: Author };
}

type RoomPhase = "idle" | "syncing" | "subscribing" | "live" | "failed";

interface RoomEntry {
  state: RoomState;
  phase: RoomPhase;
  historyLoad?: Promise<void> | undefined;
  subscribeRequest: bigint;
}

interface Connection {
  epoch: number;
  transport: Transport;
  authenticated: boolean;
  heartbeat: Heartbeat | null;
  connectTimer: TimerHandle | undefined;
}

/** Errors after which the same publish will never succeed. */
const PERMANENT_SEND_ERRORS = new Set<ErrorCode>([
  ErrorCode.MALFORMED,
  ErrorCode.ROOM_INVALID,
  ErrorCode.ROOM_NOT_FOUND,
  ErrorCode.BODY_EMPTY,
  ErrorCode.BODY_TOO_LONG,
  ErrorCode.INVALID_UTF8,
  ErrorCode.CLIENT_MSG_ID_INVALID,
  ErrorCode.PERMISSION_DENIED,
  ErrorCode.AUTHOR_INVALID,
]);

/** Derives the WebSocket and REST endpoints from the gateway's base URL. */
export function gatewayEndpoints(url: string): { ws: string; http: string } {
  const base =
    typeof location !== "undefined" && typeof location.href === "string" ? location.href : undefined;
  const u = new URL(url, base);
  if (u.protocol === "ws:") u.protocol = "http:";
  else if (u.protocol === "wss:") u.protocol = "https:";
  let path = u.pathname.replace(/\/v1\/stream\/?$/, "").replace(/\/+$/, "");
  u.search = "";
  u.hash = "";
  u.pathname = `${path}/`;
  const http = u.toString();
  const w = new URL(http);
  w.protocol = w.protocol === "https:" ? "wss:" : "ws:";
  path = `${path}/v1/stream`;
  w.pathname = path;
  return { ws: w.toString(), http };
}

export class ParleyClient extends Emitter<ParleyEvents> {
  private readonly opts: ConnectOptions;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly history: HistoryClient;
  private readonly outbox = new Outbox();
  private readonly rooms = new Map<string, RoomEntry>();
  private readonly endpoints: { ws: string; http: string };
  private current: ConnectionState = "connecting";
  private conn: Connection | null = null;
  private epoch = 0;
  private nextRequest = 1n;
  private retryTimer: TimerHandle | undefined;
  private me: Author | null = null;
  private stopped = false;
  private readonly onOnline = () => this.networkOnline();
  private readonly onOffline = () => this.networkOffline();
  private readonly network: ConnectOptions["network"];

  constructor(options: ConnectOptions) {
    super();
    if (!options.token && !options.getToken) throw new Error("parley: token or getToken required");
    this.opts = options;
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff(options.backoff);
    this.endpoints = gatewayEndpoints(options.url);
    this.history = new HistoryClient({
      baseUrl: this.endpoints.http,
      getToken: () => this.token(),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.requestTimeoutMs ? { timeoutMs: options.requestTimeoutMs } : {}),
    });
    this.network =
      options.network !== undefined
        ? options.network
        : typeof window !== "undefined" && typeof window.addEventListener === "function"
          ? window
          : null;
  }

  /** Opens the connection; {@link connect} calls this for you. */
  start(): this {
    if (this.stopped || this.conn || this.retryTimer !== undefined) return this;
    this.network?.addEventListener("online", this.onOnline);
    this.network?.addEventListener("offline", this.onOffline);
    this.open();
    return this;
  }

  get state(): ConnectionState {
    return this.current;
  }

  /** The signed-in user, once the gateway confirmed the token. */
  get user(): Author | null {
    return this.me;
  }

  get wsUrl(): string {
    return this.endpoints.ws;
  }

  /**
   * Follows a room: loads its newest history page now, then subscribes once
   * the connection is up. Returns the room's state (messages by seq).
   */
  subscribe(room: string): RoomState {
    const existing = this.rooms.get(room);
    if (existing) return existing.state;
    const entry: RoomEntry = { state: new RoomState(room), phase: "idle", subscribeRequest: 0n };
    this.rooms.set(room, entry);
    // History does not wait for the WebSocket: it is shown even offline.
    this.loadHistory(entry).catch(() => {});
    const c = this.conn;
    if (c?.authenticated) {
      this.setState("catching-up");
      void this.syncRoom(entry, c);
    }
    return entry.state;
  }

  /** The state of a subscribed room. */
  room(room: string): RoomState | undefined {
    return this.rooms.get(room)?.state;
  }

  /** True when the room's history is shown and its subscription is live. */
  isLive(room: string): boolean {
    const e = this.rooms.get(room);
    return this.current === "live" && e !== undefined && e.phase === "live";
  }

  /** Sends are pending until acked; these are the ones still waiting. */
  pending(room?: string): Pending[] {
    return this.outbox.pending(room);
  }

  /**
   * Sends a message. It is pending until the server acks it, and is resent
   * with the same clientMsgId after any reconnect until then.
   */
  send(room: string, body: string, clientMsgId?: string): Pending {
    if (this.stopped) throw new Error("parley: client is closed");
    const p = this.outbox.add(room, body, clientMsgId, this.clock.now());
    this.emit("pending", { room, pending: p });
    if (this.frameSize(p) > (this.opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)) {
      this.outbox.settle(p.clientMsgId);
      this.emit("send-error", { room, pending: p, code: "BODY_TOO_LONG", detail: "larger than the gateway's frame limit" });
      return p;
    }
    if (this.canPublish(room)) this.publish(p);
    return p;
  }

  /** Loads the page before the oldest loaded message; false when none is left. */
  async loadOlder(room: string, limit = this.opts.historyLimit ?? DEFAULT_HISTORY_LIMIT): Promise<boolean> {
    const e = this.rooms.get(room);
    if (!e || !e.state.loaded) return false;
    const oldest = e.state.oldestSeq();
    if (oldest === null || !e.state.hasOlder) return false;
    const page = await this.history.older(room, oldest, limit);
    const changes = e.state.loadOlder(page.messages, page.hasMore);
    this.emitChanges(room, changes, false, true);
    this.emit("history", { room, messages: e.state.messages(), hasOlder: e.state.hasOlder });
    return e.state.hasOlder;
  }

  /** Closes the WebSocket and stops reconnecting. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.network?.removeEventListener("online", this.onOnline);
    this.network?.removeEventListener("offline", this.onOffline);
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const c = this.conn;
    this.conn = null;
    if (c) {
      this.teardown(c);
      c.transport.abandon(CLOSE_NORMAL, "client closed");
    }
    this.setState("closed");
  }

  // ---- connection lifecycle ------------------------------------------------

  private async token(): Promise<string> {
    return this.opts.getToken ? await this.opts.getToken() : (this.opts.token as string);
  }

  private open(): void {
    if (this.stopped) return;
    this.retryTimer = undefined;
    const epoch = ++this.epoch;
    this.setState("connecting");
    let transport: Transport;
    const conn: Partial<Connection> & { epoch: number } = { epoch, authenticated: false, heartbeat: null };
    try {
      transport = new Transport(
        {
          url: this.endpoints.ws,
          format: this.opts.format ?? "proto",
          ...(this.opts.WebSocket ? { WebSocket: this.opts.WebSocket } : {}),
        },
        {
          onOpen: () => void this.authenticate(conn as Connection),
          onFrame: (f) => this.onFrame(conn as Connection, f),
          onClose: (code, reason) => this.lost(conn as Connection, `closed ${code}${reason ? ` ${reason}` : ""}`, code),
        },
      );
    } catch (e) {
      this.conn = null;
      this.scheduleRetry(e instanceof Error ? e.message : String(e));
      return;
    }
    conn.transport = transport;
    conn.connectTimer = this.clock.setTimeout(() => {
      if (this.conn === conn && !conn.authenticated) transport.abandon(CLOSE_CLIENT_GAVE_UP, "connect timeout");
    }, this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.conn = conn as Connection;
  }

  private async authenticate(c: Connection): Promise<void> {
    let token: string;
    try {
      token = await this.token();
    } catch (e) {
      if (this.conn === c) c.transport.abandon(CLOSE_CLIENT_GAVE_UP, `token: ${e instanceof Error ? e.message : e}`);
      return;
    }
    if (this.conn !== c) return;
    this.sendFrame(c, { case: "authenticate", value: { token } });
  }

  private onFrame(c: Connection, frame: ServerFrame): void {
    if (this.conn !== c) return;
    c.heartbeat?.heard();
    const k = frame.kind;
    switch (k.case) {
      case "authenticated":
        this.authenticated(c, k.value.user);
        break;
      case "pong":
        c.heartbeat?.pong(k.value.nonce);
        break;
      case "event":
        this.onEvent(k.value);
        break;
      case "subscribed": {
        const r = k.value.room;
        const e = r ? this.rooms.get(r.name) : undefined;
        if (!r || !e || e.phase !== "subscribing") break;
        e.state.markSynced(r.headRev);
        e.phase = "live";
        this.maybeLive();
        break;
      }
      case "ack":
        this.onAck(frame.requestId, k.value.clientMsgId, k.value.message, k.value.duplicate);
        break;
      case "error":
        this.onError(c, frame.requestId, k.value);
        break;
      default:
        break;
    }
  }

  private authenticated(c: Connection, user: Author | undefined): void {
    if (c.authenticated) return;
    c.authenticated = true;
    if (c.connectTimer !== undefined) this.clock.clearTimeout(c.connectTimer);
    c.connectTimer = undefined;
    if (user) {
      this.me = user;
      this.emit("authenticated", { user });
    }
    c.heartbeat = new Heartbeat({
      intervalMs: this.opts.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS,
      timeoutMs: this.opts.heartbeatTimeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS,
      clock: this.clock,
      sendPing: (nonce) => this.sendFrame(c, { case: "ping", value: { nonce } }),
      onTimeout: () => {
        if (this.conn === c) c.transport.abandon(CLOSE_CLIENT_GAVE_UP, "heartbeat timeout");
      },
    });
    c.heartbeat.start();
    this.setState("catching-up");
    for (const e of this.rooms.values()) if (e.phase !== "failed") void this.syncRoom(e, c);
    this.maybeLive();
  }

  /** Loads the room's first history page once (shared by every caller). */
  private loadHistory(e: RoomEntry): Promise<void> {
    if (e.state.loaded) return Promise.resolve();
    if (!e.historyLoad) {
      const room = e.state.name;
      e.historyLoad = this.history.latest(room, this.opts.historyLimit ?? DEFAULT_HISTORY_LIMIT).then(
        (page) => {
          const changes = e.state.loadLatest(page.messages, page.room?.headRev ?? 0n, page.hasMore);
          this.emitChanges(room, changes, false, true);
          this.emit("history", { room, messages: e.state.messages(), hasOlder: e.state.hasOlder });
        },
        (err: unknown) => {
          e.historyLoad = undefined;
          throw err;
        },
      );
    }
    return e.historyLoad;
  }

  /** Catches one room up over REST, then subscribes from its synced rev. */
  private async syncRoom(e: RoomEntry, c: Connection): Promise<void> {
    const room = e.state.name;
    e.phase = "syncing";
    try {
      if (!e.state.loaded) {
        await this.loadHistory(e);
      } else {
        const r = await this.history.catchUp(room, e.state.syncedRev);
        // Valid whatever happened to the connection meanwhile.
        const changes = e.state.applyAll(r.messages);
        e.state.markSynced(r.headRev);
        this.emitChanges(room, changes, true, false);
      }
    } catch (err) {
      if (this.conn !== c) return;
      const code = err instanceof HttpError ? err.code : "NETWORK";
      const detail = err instanceof Error ? err.message : String(err);
      this.emit("error", { room, code, detail, fatal: false });
      if (err instanceof HttpError && !err.transient && err.status !== HTTP_UNAUTHORIZED) {
        e.phase = "failed";
        this.maybeLive();
      } else {
        // The database is not reachable right now: treat it like a lost link.
        c.transport.abandon(CLOSE_CLIENT_GAVE_UP, `catch-up failed: ${detail}`);
      }
      return;
    }
    if (this.conn !== c || !c.authenticated || this.rooms.get(room) !== e) return;
    e.phase = "subscribing";
    e.subscribeRequest = this.sendFrame(c, {
      case: "subscribe",
      value: { room, resumeAfterRev: e.state.syncedRev },
    });
  }

  private maybeLive(): void {
    const c = this.conn;
    if (!c?.authenticated) return;
    for (const e of this.rooms.values()) if (e.phase !== "live" && e.phase !== "failed") return;
    if (this.current !== "live") {
      this.backoff.reset();
      this.setState("live");
    }
    for (const p of this.outbox.pending()) if (p.requestId === 0n && this.canPublish(p.room)) this.publish(p);
  }

  /** The connection ended (close, heartbeat, timeout, offline). */
  private lost(c: Connection, reason: string, code: number): void {
    if (this.conn !== c) return;
    this.conn = null;
    this.teardown(c);
    if (code === CLOSE_UNAUTH) this.emit("error", { code: "UNAUTHENTICATED", detail: reason, fatal: true });
    if (this.stopped) return;
    this.scheduleRetry(reason);
  }

  private teardown(c: Connection): void {
    c.heartbeat?.stop();
    c.heartbeat = null;
    if (c.connectTimer !== undefined) this.clock.clearTimeout(c.connectTimer);
    c.connectTimer = undefined;
    c.authenticated = false;
    this.outbox.connectionLost();
    for (const p of this.outbox.pending()) p.requestId = 0n;
    for (const e of this.rooms.values()) if (e.phase !== "failed") e.phase = "idle";
  }

  private scheduleRetry(reason: string): void {
    if (this.stopped || this.retryTimer !== undefined) return;
    const delay = this.backoff.next();
    this.setState("offline", { retryInMs: delay, reason });
    this.retryTimer = this.clock.setTimeout(() => this.open(), delay);
  }

  private networkOffline(): void {
    // The browser knows the link is gone: do not wait for the heartbeat.
    const c = this.conn;
    if (c) c.transport.abandon(CLOSE_CLIENT_GAVE_UP, "browser offline");
  }

  private networkOnline(): void {
    if (this.stopped || this.conn) return;
    // The network is back: try now instead of sleeping out the backoff.
    if (this.retryTimer !== undefined) this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.backoff.reset();
    this.open();
  }

  private setState(state: ConnectionState, extra: { retryInMs?: number; reason?: string } = {}): void {
    const previous = this.current;
    if (previous === state && state !== "offline") return;
    this.current = state;
    this.emit("state", { state, previous, ...extra });
  }

  // ---- frames ---------------------------------------------------------------

  private sendFrame(c: Connection, kind: MessageInitShape<typeof ClientFrameSchema>["kind"]): bigint {
    const requestId = this.nextRequest++;
    c.transport.send(create(ClientFrameSchema, { requestId, kind }));
    return requestId;
  }

  private canPublish(room: string): boolean {
    const c = this.conn;
    if (!c?.authenticated) return false;
    const e = this.rooms.get(room);
    return e === undefined || e.phase === "live";
  }

  private frameSize(p: Pending): number {
    const frame = create(ClientFrameSchema, {
      requestId: this.nextRequest,
      kind: { case: "publish", value: { room: p.room, clientMsgId: p.clientMsgId, body: p.body } },
    });
    const encoded = encodeClientFrame(frame, this.opts.format ?? "proto");
    return typeof encoded === "string" ? new TextEncoder().encode(encoded).length : encoded.length;
  }

  private publish(p: Pending): void {
    const c = this.conn;
    if (!c) return;
    const id = this.sendFrame(c, {
      case: "publish",
      value: { room: p.room, clientMsgId: p.clientMsgId, body: p.body },
    });
    this.outbox.sent(p.clientMsgId, id);
  }

  private onEvent(ev: EventFrame): void {
    const m = ev.message;
    if (!m) return;
    const e = this.rooms.get(m.room);
    if (!e || (e.phase !== "subscribing" && e.phase !== "live")) return;
    const change = e.state.applyStream(m);
    this.emitChanges(m.room, change ? [change] : [], ev.replay, false);
  }

  private onAck(requestId: bigint, clientMsgId: string, message: Message | undefined, duplicate: boolean): void {
    const p = this.outbox.byRequestId(requestId) ?? this.outbox.get(clientMsgId);
    if (!p) return;
    this.outbox.settle(p.clientMsgId);
    this.emit("ack", { room: p.room, pending: p, duplicate, ...(message ? { message } : {}) });
    const e = this.rooms.get(p.room);
    if (message && e) {
      // Content only: the ack says nothing about the revs before this one.
      const change = e.state.apply(message);
      if (change) this.emitChanges(p.room, [change], false, false);
    }
  }

  private onError(c: Connection, requestId: bigint, err: ErrorFrame): void {
    const code = ErrorCode[err.code] ?? String(err.code);
    const p = requestId !== 0n ? this.outbox.byRequestId(requestId) : undefined;
    if (p) {
      if (PERMANENT_SEND_ERRORS.has(err.code)) {
        this.outbox.settle(p.clientMsgId);
        this.emit("send-error", { room: p.room, pending: p, code, detail: err.detail });
      } else {
        // Kept, and tried again (same clientMsgId) after a pause, or on the
        // next connection if this one ends first.
        this.emit("error", { room: p.room, code, detail: err.detail, fatal: err.fatal });
        p.requestId = 0n;
        const delay = Math.max(SEND_RETRY_MIN_DELAY_MS, this.backoff.ceiling(Math.min(p.attempts, SEND_RETRY_MAX_STEP)));
        this.clock.setTimeout(() => {
          if (this.outbox.get(p.clientMsgId) === p && p.requestId === 0n && this.canPublish(p.room)) {
            this.publish(p);
          }
        }, delay);
      }
    } else {
      let room: string | undefined;
      for (const e of this.rooms.values()) {
        if (requestId !== 0n && e.subscribeRequest === requestId && e.phase === "subscribing") {
          room = e.state.name;
          e.phase = "failed";
        }
      }
      this.emit("error", { ...(room ? { room } : {}), code, detail: err.detail, fatal: err.fatal });
      if (room) this.maybeLive();
    }
    if (err.fatal && this.conn === c) c.transport.abandon(CLOSE_CLIENT_GAVE_UP, `fatal ${code}`);
  }

  private emitChanges(room: string, changes: Change[], replay: boolean, fromHistory: boolean): void {
    for (const ch of changes) {
      const settled = this.outbox.settleStored(ch.message, this.me?.id ?? null);
      if (settled) this.emit("ack", { room, pending: settled, message: ch.message, duplicate: false });
      if (fromHistory) continue; // reported as one 'history' event
      if (ch.kind === "created") this.emit("message", { room, message: ch.message, replay });
      else if (ch.kind === "edited" && ch.previous) {
        this.emit("edit", { room, message: ch.message, previous: ch.previous });
      } else if (ch.kind === "deleted") {
        this.emit("delete", { room, message: ch.message, ...(ch.previous ? { previous: ch.previous } : {}) });
      }
    }
  }
}

/** Creates a client and starts connecting. */
export function connect(options: ConnectOptions): ParleyClient {
  return new ParleyClient(options).start();
}
