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
//                   go out again with their original clientMsgId;
//   signed out      a refused or expired token (close 4401 / 4402, REST 401)
//                   is not a network problem: the app's tokenProvider is
//                   asked for a fresh one and the client reconnects at once;
//                   without one, state 'unauthenticated' until reconnect().
// Frames are paced under the gateway's token bucket, and bodies checked
// against the server's limits before they are sent (limits.ts).
import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { type Clock, type TimerHandle, systemClock } from "./clock.js";
import {
  CLOSE_CLIENT_GAVE_UP,
  CLOSE_NORMAL,
  CLOSE_RATE,
  CLOSE_TOKEN_EXPIRED,
  CLOSE_UNAUTH,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_HISTORY_LIMIT,
  HTTP_UNAUTHORIZED,
  MAX_TIMER_DELAY_MS,
  MS_PER_SECOND,
  RATE_LIMITED_MIN_DELAY_MS,
  SEND_RETRY_MAX_STEP,
  SEND_RETRY_MIN_DELAY_MS,
  TYPING_SEND_INTERVAL_MS,
} from "./constants.js";
import { Emitter } from "./emitter.js";
import {
  type Author,
  ErrorCode,
  type Message,
  type ModerationAction,
  type Room,
  type RoomAccess,
  RoomAccessSchema,
  RoomMode,
  Role,
  Rule,
} from "./gen/parley/v1/message_pb.js";
import type { MarkReadResponse } from "./gen/parley/v1/rooms_pb.js";
import {
  ClientFrameSchema,
  type Error as ErrorFrame,
  type Event as EventFrame,
  type Presence as PresenceFrame,
  type RoomEvent as RoomEventFrame,
  type ServerFrame,
} from "./gen/parley/v1/stream_pb.js";
import { Heartbeat } from "./heartbeat.js";
import { type FetchLike, HistoryClient, HttpError, ORIGIN_NOT_ALLOWED } from "./history.js";
import { DEFAULT_LIMITS, type Limits, type SendProblem, checkBody, mergeLimits } from "./limits.js";
import { ModerateAction, type ModerateOptions, RoomsApi } from "./moderation.js";
import { Outbox, type Pending } from "./outbox.js";
import { type FramePriority, Pacer } from "./pacer.js";
import { type WireFormat, encodeClientFrame } from "./protocol.js";
import { applyAction, isMuted, withPostRule } from "./room-access.js";
import { type Change, RoomState } from "./room-state.js";
import { AuthFailure, type AuthFailureReason, type TokenProvider, TokenSource } from "./token-source.js";
import { Transport, type WebSocketConstructor } from "./transport.js";
import { TypingTracker } from "./typing.js";

/**
 * connecting → catching-up → live; offline between attempts;
 * unauthenticated when the token was refused for good (until reconnect());
 * closed after close().
 */
export type ConnectionState = "connecting" | "live" | "offline" | "catching-up" | "unauthenticated" | "closed";

export interface ConnectOptions {
  /** The gateway's base URL ("https://chat.example.com"); ws(s):// works too. */
  url: string;
  /** A bearer token (JWT). This, tokenProvider or getToken is required. */
  token?: string;
  /**
   * The app's source of fresh tokens: asked once per connection attempt
   * (reason "connect") and again when the server refused the token it gave
   * (reason "rejected"). When it throws, or hands back refused tokens, the
   * client stops in state 'unauthenticated' and emits 'auth-error'.
   */
  tokenProvider?: TokenProvider;
  /** The same as tokenProvider (the older name). */
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
   * The gateway's WebSocket message limit (it closes with 1009 above it),
   * used until the gateway states its own in Authenticated. A send whose
   * frame would be larger is refused at once instead of breaking the
   * connection on every retry. Default 65 536 bytes.
   */
  maxFrameBytes?: number;
  /** Ask for `presence` frames (who is in each room): the 'presence' event. */
  presence?: boolean;
  /** Ask for `typing` frames (who is typing): the 'typing' event. */
  typing?: boolean;
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
  /**
   * A page of history was applied: the first one, or (`older`) one loaded by
   * scrolling back. `messages` is every message the room holds now.
   */
  history: { room: string; messages: Message[]; hasOlder: boolean; older: boolean };
  /** A new message (or one first seen as a tombstone is not reported here). */
  message: { room: string; message: Message; replay: boolean };
  edit: { room: string; message: Message; previous: Message };
  delete: { room: string; message: Message; previous?: Message };
  /** A send was queued; it is pending until 'ack'. */
  pending: { room: string; pending: Pending };
  /** A pending send was stored (ack, or seen stored after a lost ack). */
  ack: { room: string; pending: Pending; message?: Message; duplicate: boolean };
  /** The server refused a send for good; it is no longer pending. */
  "send-error": { room: string; pending: Pending; code: string; detail: string; rule?: string };
  /** An error the server reported, or a REST failure. */
  /** rule: the access rule of a PERMISSION_DENIED (REMOVED, MEMBERS_ONLY, ...). */
  error: { room?: string; code: string; detail: string; fatal: boolean; rule?: string };
  authenticated: { user: Author; limits: Limits };
  /**
   * Signing in failed for good (state 'unauthenticated'): the token was
   * refused and no fresh one came ("rejected"), or the tokenProvider threw
   * ("provider-failed"). Call reconnect() once the app has a new token.
   */
  "auth-error": { code: AuthErrorCode; reason: AuthFailureReason; detail: string };
  /**
   * What the signed-in user may do in a room changed: the server stated it
   * (a history page, Subscribed, a REST answer), a room event changed it (a
   * mute of this user, a new mode), or a mute ran out. `access.canPost` and
   * `access.postRule` (a Rule) say whether and why not they may post.
   */
  access: { room: string; access: RoomAccess; mode: RoomMode };
  /** A room action (moderation, settings, members), live; `room` the room after it. */
  "room-event": { room: string; action: ModerationAction; info?: Room };
  /** Who is in the room now (with `presence: true`): a count and the first names. */
  presence: PresenceInfo;
  /** Who is typing in the room now (with `typing: true`); [] when nobody is. */
  typing: { room: string; users: Author[] };
}

/** Who is in a room: `count` users, the first `users` of them by name. */
export interface PresenceInfo {
  room: string;
  count: number;
  users: Author[];
  truncated: boolean;
}

/** What the server said of the token last refused: invalid, or expired. */
export type AuthErrorCode = "UNAUTHENTICATED" | "TOKEN_EXPIRED";

export type { SendProblem, Limits };

/** idle (history and catch-up run here) → subscribing → live; failed for good. */
type RoomPhase = "idle" | "subscribing" | "live" | "failed";

interface RoomEntry {
  state: RoomState;
  phase: RoomPhase;
  historyLoad?: Promise<void> | undefined;
  subscribeRequest: bigint;
  /** The core's body limit for this room (Room.maxBodyBytes); null until stated. */
  maxBody: number | null;
  /** The room's settings as last stated (title, topic, mode...); null until then. */
  info: Room | null;
  /** The user's own access (Room.me, kept up to date by room events); null until stated. */
  access: RoomAccess | null;
  /** Ends a timed mute of this user locally (the core ends it at the same time). */
  muteTimer: TimerHandle | undefined;
  presence: PresenceInfo | null;
  typing: TypingTracker;
  /** When this client last sent typing{room}, for the rate limit. */
  typingSentAt: number;
}

interface Connection {
  transport: Transport;
  pacer: Pacer;
  authenticated: boolean;
  /** The token this connection authenticated with (known once sent). */
  token: string | null;
  heartbeat: Heartbeat | null;
  connectTimer: TimerHandle | undefined;
}

/** A client id as long as newClientMsgId()'s, to size a publish frame before there is one. */
const SIZING_CLIENT_MSG_ID = "0".repeat(32);

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
  // Relative to the page in a browser ("/chat/"); absolute elsewhere.
  const base = typeof location !== "undefined" ? location.href : undefined;
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
  private readonly format: WireFormat;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly history: HistoryClient;
  private readonly api: RoomsApi;
  private readonly tokens: TokenSource;
  private readonly outbox = new Outbox();
  private readonly rooms = new Map<string, RoomEntry>();
  private readonly endpoints: { ws: string; http: string };
  private current: ConnectionState = "connecting";
  private conn: Connection | null = null;
  private nextRequest = 1n;
  private retryTimer: TimerHandle | undefined;
  private me: Author | null = null;
  private stated: Limits;
  private stopped = false;
  /** Signing in failed for good; nothing is retried until reconnect(). */
  private signedOut = false;
  private readonly onOnline = () => this.networkOnline();
  private readonly onOffline = () => this.networkOffline();
  private readonly network: ConnectOptions["network"];

  constructor(options: ConnectOptions) {
    super();
    const provider = options.tokenProvider ?? options.getToken ?? null;
    if (options.token === undefined && !provider) throw new Error("parley: token or tokenProvider required");
    this.opts = options;
    this.format = options.format ?? "proto";
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff(options.backoff);
    this.endpoints = gatewayEndpoints(options.url);
    this.tokens = new TokenSource({ token: options.token, provider });
    this.stated = {
      ...DEFAULT_LIMITS,
      ...(options.maxFrameBytes ? { maxFrameBytes: options.maxFrameBytes } : {}),
    };
    this.history = new HistoryClient({
      baseUrl: this.endpoints.http,
      getToken: () => this.tokens.current(),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.requestTimeoutMs ? { timeoutMs: options.requestTimeoutMs } : {}),
    });
    this.api = new RoomsApi(this.history);
    this.network =
      options.network !== undefined
        ? options.network
        : typeof window !== "undefined"
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

  /** True when the signed-in user is an organizer (may change any message). */
  get isOrganizer(): boolean {
    return this.me?.role === Role.ORGANIZER;
  }

  /** The gateway's limits on this session (its defaults until it stated them). */
  get limits(): Limits {
    return { ...this.stated };
  }

  /** The core's body limit in a room, in bytes of UTF-8; null until the server stated it. */
  maxBodyBytes(room: string): number | null {
    return this.rooms.get(room)?.maxBody ?? null;
  }

  /**
   * Whether `body` can be sent to `room` as it is: null, or why not (empty,
   * longer than the core's body limit, larger than the gateway's frame).
   */
  check(room: string, body: string): SendProblem | null {
    // Sized with an id as long as the ones send() makes.
    const frame = this.frameSize({ room, clientMsgId: SIZING_CLIENT_MSG_ID, body });
    return checkBody(body, this.maxBodyBytes(room), frame, this.stated.maxFrameBytes);
  }

  /**
   * True when the signed-in user may edit or delete `message`: their own, or
   * any as an organizer of its room.
   */
  canModify(message: Message): boolean {
    const me = this.me;
    if (!me || message.deleted) return false;
    return message.author?.id === me.id || this.roleIn(message.room) === Role.ORGANIZER;
  }

  /**
   * The user's role in `room`: the server's `me.role` once a Room stated it,
   * else the token's role as the gateway confirmed it (Role.UNSPECIFIED
   * before that).
   */
  roleIn(room: string): Role {
    const a = this.rooms.get(room)?.access;
    if (a && a.role !== Role.UNSPECIFIED) return a.role;
    return this.me?.role ?? Role.UNSPECIFIED;
  }

  /** True when the user may moderate `room` (mute, remove, set its mode, delete any message). */
  canModerate(room: string): boolean {
    return this.roleIn(room) === Role.ORGANIZER;
  }

  /**
   * The user's own access to a followed room (Room.me from the server, kept
   * up to date by room events); null until the server stated it.
   */
  access(room: string): RoomAccess | null {
    return this.rooms.get(room)?.access ?? null;
  }

  /** A followed room's settings (mode, title, topic...) as last stated; null until then. */
  roomInfo(room: string): Room | null {
    return this.rooms.get(room)?.info ?? null;
  }

  /** Who is in a followed room (with `presence: true`), as last reported. */
  presence(room: string): PresenceInfo | null {
    return this.rooms.get(room)?.presence ?? null;
  }

  /** Who is typing in a followed room now (with `typing: true`). */
  typingUsers(room: string): Author[] {
    return this.rooms.get(room)?.typing.users() ?? [];
  }

  /**
   * Tells the room's other readers that this user is typing. Rate limited:
   * at most one frame per TYPING_SEND_INTERVAL_MS per room (the core passes
   * on no more); nothing while the room is not live or the user may not
   * post. True when a frame went out.
   */
  sendTyping(room: string): boolean {
    const e = this.rooms.get(room);
    const c = this.conn;
    if (!e || e.phase !== "live" || !c?.authenticated) return false;
    if (e.access && !e.access.canPost) return false;
    const now = this.clock.now();
    if (e.typingSentAt !== 0 && now - e.typingSentAt < TYPING_SEND_INTERVAL_MS) return false;
    e.typingSentAt = now;
    this.sendFrame(c, { case: "typing", value: { room } });
    return true;
  }

  /** Mutes `userId` in `room` (organizers): for `durationMs`, or until unmuted. */
  mute(room: string, userId: string, opts: ModerateOptions = {}): Promise<ModerationAction | undefined> {
    return this.moderate(room, userId, ModerateAction.MUTE, opts);
  }

  unmute(room: string, userId: string): Promise<ModerationAction | undefined> {
    return this.moderate(room, userId, ModerateAction.UNMUTE);
  }

  /** Removes `userId` from `room` (organizers): they may neither read nor post, for `durationMs` or until readmitted. */
  removeUser(room: string, userId: string, opts: ModerateOptions = {}): Promise<ModerationAction | undefined> {
    return this.moderate(room, userId, ModerateAction.REMOVE, opts);
  }

  readmit(room: string, userId: string): Promise<ModerationAction | undefined> {
    return this.moderate(room, userId, ModerateAction.READMIT);
  }

  /** One moderation action through the gateway (REST), decided by the core as this user. */
  moderate(room: string, userId: string, action: ModerateAction, opts: ModerateOptions = {}): Promise<ModerationAction | undefined> {
    return this.authorized(() => this.api.moderate(room, userId, action, opts));
  }

  /** Sets a room's mode (organizers): open, announcements (only organizers post) or closed. */
  async setMode(room: string, mode: RoomMode): Promise<Room | undefined> {
    const r = await this.authorized(() => this.api.setMode(room, mode));
    const e = this.rooms.get(room);
    if (r && e) this.learnRoom(e, r);
    return r;
  }

  /** Asks the server for the user's access to a followed room again (GET /v1/rooms/{room}). */
  async refreshAccess(room: string): Promise<RoomAccess | null> {
    const r = await this.authorized(() => this.api.room(room));
    const e = this.rooms.get(room);
    if (e) this.learnRoom(e, r);
    return r.me ?? null;
  }

  /**
   * Records that the user read `room` up to message `seq` (at room rev
   * `rev`); the server keeps the newest. Its answer updates access(room).
   */
  async markRead(room: string, seq: bigint, rev: bigint): Promise<MarkReadResponse> {
    const r = await this.authorized(() => this.api.markRead(room, seq, rev));
    const a = this.rooms.get(room)?.access;
    if (a) {
      a.lastReadSeq = r.lastReadSeq;
      a.lastReadRev = r.lastReadRev;
      a.unreadCount = r.unreadCount;
    }
    return r;
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
    const entry: RoomEntry = {
      state: new RoomState(room),
      phase: "idle",
      subscribeRequest: 0n,
      maxBody: null,
      info: null,
      access: null,
      muteTimer: undefined,
      presence: null,
      typing: new TypingTracker((users) => this.emit("typing", { room, users }), this.clock),
      typingSentAt: 0,
    };
    this.rooms.set(room, entry);
    // History does not wait for the WebSocket: it is shown even offline.
    this.loadHistory(entry).catch((err: unknown) => this.originRefused(room, err));
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
    const problem = checkBody(body, this.maxBodyBytes(room), this.frameSize(p), this.stated.maxFrameBytes);
    if (problem) {
      // Refused before it goes out: it could never be stored, and a frame
      // over the gateway's limit would break the connection on every retry.
      this.outbox.settle(p.clientMsgId);
      this.emit("send-error", { room, pending: p, code: problem.code, detail: problem.detail });
      return p;
    }
    if (this.canPublish(this.conn, room)) this.publish(this.conn, p);
    return p;
  }

  /**
   * Edits a stored message (REST PATCH; the author or an organizer). The
   * result is applied at once; its copy on the stream then changes nothing.
   */
  async edit(room: string, seq: bigint, body: string): Promise<Message> {
    const m = await this.authorized(() => this.history.edit(room, seq, body));
    this.applyOwnChange(room, m);
    return m;
  }

  /** Deletes a stored message, leaving a tombstone (REST DELETE; the author or an organizer). */
  async delete(room: string, seq: bigint): Promise<Message> {
    const m = await this.authorized(() => this.history.remove(room, seq));
    this.applyOwnChange(room, m);
    return m;
  }

  /**
   * Tries again now: after a sign-in error (the app has a new token), or to
   * skip the rest of a backoff wait. Asks the token source afresh.
   */
  reconnect(): void {
    if (this.stopped) return;
    this.signedOut = false;
    this.tokens.reset();
    this.backoff.reset();
    if (this.conn) return;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // A room whose history never loaded (refused token) loads it now; for
    // the others loadHistory() returns the page it already has.
    for (const e of this.rooms.values()) this.loadHistory(e).catch(() => {});
    this.open();
  }

  /** Loads the page before the oldest loaded message; false when none is left. */
  async loadOlder(room: string, limit = this.opts.historyLimit ?? DEFAULT_HISTORY_LIMIT): Promise<boolean> {
    const e = this.rooms.get(room);
    if (!e || !e.state.loaded) return false;
    const oldest = e.state.olderCursor();
    if (oldest === null) return false;
    const page = await this.authorized(() => this.history.older(room, oldest, limit));
    // Trimmed meanwhile: this page would leave a gap; the caller may ask again.
    if (e.state.oldestSeq() !== oldest) return e.state.hasOlder;
    const changes = e.state.loadOlder(page.messages, page.hasMore);
    this.emitChanges(room, changes, "history");
    this.emit("history", { room, messages: e.state.messages(), hasOlder: e.state.hasOlder, older: true });
    return e.state.hasOlder;
  }

  /**
   * Forgets all but the newest `keep` messages of a room (a reader following
   * the end does not need them; loadOlder() brings them back). Returns the
   * seqs dropped.
   */
  trim(room: string, keep: number): bigint[] {
    return this.rooms.get(room)?.state.trimTo(keep) ?? [];
  }

  /** Closes the WebSocket and stops reconnecting. */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.network?.removeEventListener("online", this.onOnline);
    this.network?.removeEventListener("offline", this.onOffline);
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const c = this.conn;
    this.conn = null;
    if (c) {
      this.teardown(c);
      c.transport.abandon(CLOSE_NORMAL, "client closed");
    }
    for (const e of this.rooms.values()) {
      this.clock.clearTimeout(e.muteTimer);
      e.muteTimer = undefined;
      e.typing.clear();
    }
    this.setState("closed");
  }

  // ---- connection lifecycle ------------------------------------------------

  /**
   * Runs a REST call with the current token; when the server refuses it
   * (401), asks the token source for another and tries again. An AuthFailure
   * ends in state 'unauthenticated'.
   */
  private async authorized<T>(call: () => Promise<T>): Promise<T> {
    let refused: AuthErrorCode = "UNAUTHENTICATED";
    for (;;) {
      const used = await this.tokens.current().catch((e: unknown) => this.failAuth(e, refused));
      try {
        const result = await call();
        this.tokens.accepted();
        return result;
      } catch (err) {
        if (!(err instanceof HttpError) || err.status !== HTTP_UNAUTHORIZED) throw err;
        refused = err.code === "TOKEN_EXPIRED" ? "TOKEN_EXPIRED" : "UNAUTHENTICATED";
      }
      await this.tokens.replace(used).catch((e: unknown) => this.failAuth(e, refused));
    }
  }

  /** Ends in 'unauthenticated' and rethrows; the token source rejects only with AuthFailure. */
  private failAuth(e: unknown, code: AuthErrorCode): never {
    this.signInFailed(e as AuthFailure, code);
    throw e;
  }

  private open(): void {
    if (this.stopped || this.signedOut) return;
    this.retryTimer = undefined;
    this.setState("connecting");
    let transport: Transport;
    const conn: Partial<Connection> = {
      authenticated: false,
      heartbeat: null,
      token: null,
      pacer: new Pacer({ rate: this.stated.frameRate, burst: this.stated.frameBurst, clock: this.clock }),
    };
    try {
      transport = new Transport(
        {
          url: this.endpoints.ws,
          format: this.format,
          ...(this.opts.WebSocket ? { WebSocket: this.opts.WebSocket } : {}),
        },
        {
          onOpen: () => void this.authenticate(conn as Connection),
          onFrame: (f) => this.onFrame(conn as Connection, f),
          onClose: (code, reason) => this.lost(conn as Connection, `closed ${code}${reason ? ` ${reason}` : ""}`, code),
        },
      );
    } catch (e) {
      this.scheduleRetry(e instanceof Error ? e.message : String(e));
      return;
    }
    conn.transport = transport;
    // Cleared once authenticated (or when the connection ends).
    conn.connectTimer = this.clock.setTimeout(
      () => transport.abandon(CLOSE_CLIENT_GAVE_UP, "connect timeout"),
      this.opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    );
    this.conn = conn as Connection;
  }

  private async authenticate(c: Connection): Promise<void> {
    let token: string;
    try {
      token = await this.tokens.forConnection();
    } catch (e) {
      this.signInFailed(e as AuthFailure); // the token source rejects only with AuthFailure
      return;
    }
    // If the connection ended meanwhile, its pacer is stopped and drops this.
    c.token = token;
    this.sendFrame(c, { case: "authenticate", value: { token } });
    // Several frames may then come in one message (a replay, a burst): one
    // wake-up and one decode instead of one per event.
    // Presence and typing frames only when the app shows them.
    this.sendFrame(c, {
      case: "options",
      value: { batch: true, presence: this.opts.presence === true, typing: this.opts.typing === true },
    });
  }

  /** A frame of the current connection (the transport reports none after its close). */
  private onFrame(c: Connection, frame: ServerFrame): void {
    c.heartbeat?.heard();
    const k = frame.kind;
    switch (k.case) {
      case "authenticated":
        this.authenticated(c, k.value.user, k.value.limits);
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
        this.learnRoom(e, r);
        e.state.markSynced(r.headRev);
        e.phase = "live";
        this.maybeLive(c);
        break;
      }
      case "ack":
        this.onAck(frame.requestId, k.value.message, k.value.duplicate);
        break;
      case "error":
        this.onError(c, frame.requestId, k.value);
        break;
      case "roomEvent":
        this.onRoomEvent(k.value);
        break;
      case "presence":
        this.onPresence(k.value);
        break;
      case "typing": {
        const u = k.value.user;
        const e = this.rooms.get(k.value.room);
        if (e && u && u.id !== this.me?.id) e.typing.typed(u);
        break;
      }
    }
  }

  /** A room action, live: the room's settings, and the user's access if it changed it. */
  private onRoomEvent(ev: RoomEventFrame): void {
    const action = ev.action;
    const name = ev.room?.name || action?.room || "";
    const e = this.rooms.get(name);
    if (!e || !action) return;
    if (ev.room) this.learnRoom(e, ev.room);
    const me = this.me;
    if (me) {
      const base = e.access ?? create(RoomAccessSchema, { role: me.role, canPost: true });
      this.setAccess(e, applyAction(base, action, this.modeOf(e), me.id, this.clock.now()));
    }
    this.emit("room-event", { room: name, action, ...(ev.room ? { info: ev.room } : {}) });
  }

  private onPresence(p: PresenceFrame): void {
    const e = this.rooms.get(p.room);
    if (!e) return;
    e.presence = { room: p.room, count: p.count, users: p.users, truncated: p.truncated };
    this.emit("presence", e.presence);
  }

  private modeOf(e: RoomEntry): RoomMode {
    return e.info?.mode ?? RoomMode.UNSPECIFIED;
  }

  /**
   * The user's access to a room is now `access`: kept, reported when it
   * changed anything, and a timed mute ends here when its time comes.
   */
  private setAccess(e: RoomEntry, access: RoomAccess): void {
    const old = e.access;
    e.access = access;
    this.clock.clearTimeout(e.muteTimer);
    e.muteTimer = undefined;
    const now = this.clock.now();
    if (isMuted(access, now) && access.mutedUntilMs > 0n) {
      // A mute of weeks is looked at again after the longest timer there is
      // (still muted then: the same access, set again).
      e.muteTimer = this.clock.setTimeout(() => {
        e.muteTimer = undefined;
        if (e.access === access) this.setAccess(e, withPostRule(access, this.modeOf(e), this.clock.now()));
      }, Math.min(Number(access.mutedUntilMs) - now, MAX_TIMER_DELAY_MS));
    }
    const same =
      old !== null &&
      old.role === access.role &&
      old.canPost === access.canPost &&
      old.postRule === access.postRule &&
      old.muted === access.muted &&
      old.mutedUntilMs === access.mutedUntilMs &&
      old.member === access.member;
    if (!same) this.emit("access", { room: e.state.name, access, mode: this.modeOf(e) });
  }

  private authenticated(c: Connection, user: Author | undefined, limits: Parameters<typeof mergeLimits>[1]): void {
    if (c.authenticated) return;
    c.authenticated = true;
    this.clock.clearTimeout(c.connectTimer);
    c.connectTimer = undefined;
    this.stated = mergeLimits(this.stated, limits);
    c.pacer.setLimits(this.stated.frameRate, this.stated.frameBurst);
    if (user) {
      this.me = user;
      this.emit("authenticated", { user, limits: this.limits });
    }
    c.heartbeat = new Heartbeat({
      intervalMs: this.opts.heartbeatIntervalMs,
      timeoutMs: this.opts.heartbeatTimeoutMs,
      clock: this.clock,
      sendPing: (nonce) => this.sendFrame(c, { case: "ping", value: { nonce } }),
      onTimeout: () => c.transport.abandon(CLOSE_CLIENT_GAVE_UP, "heartbeat timeout"),
    });
    c.heartbeat.start();
    this.setState("catching-up");
    for (const e of this.rooms.values()) if (e.phase !== "failed") void this.syncRoom(e, c);
    this.maybeLive(c);
  }

  /** Loads the room's first history page once (shared by every caller). */
  private loadHistory(e: RoomEntry): Promise<void> {
    if (!e.historyLoad) {
      const room = e.state.name;
      const limit = this.opts.historyLimit ?? DEFAULT_HISTORY_LIMIT;
      e.historyLoad = this.authorized(() => this.history.latest(room, limit)).then(
        (page) => {
          if (page.room) this.learnRoom(e, page.room);
          const changes = e.state.loadLatest(page.messages, page.room?.headRev ?? 0n, page.hasMore);
          this.emitChanges(room, changes, "history");
          this.emit("history", { room, messages: e.state.messages(), hasOlder: e.state.hasOlder, older: false });
        },
        (err: unknown) => {
          e.historyLoad = undefined;
          throw err;
        },
      );
    }
    return e.historyLoad;
  }

  /**
   * The gateway refuses this page's origin: nothing will work from here,
   * however often it is retried (the WebSocket upgrade is refused too), so
   * say so once, as a fatal error, and stop.
   */
  private originRefused(room: string, err: unknown): void {
    if (!(err instanceof HttpError) || err.code !== ORIGIN_NOT_ALLOWED || this.stopped) return;
    this.emit("error", { room, code: err.code, detail: err.message, fatal: true });
    this.close();
  }

  /** Catches one room up over REST, then subscribes from its synced rev. */
  private async syncRoom(e: RoomEntry, c: Connection): Promise<void> {
    const room = e.state.name;
    try {
      if (!e.state.loaded) {
        await this.loadHistory(e);
      } else {
        const after = e.state.syncedRev;
        const r = await this.authorized(() => this.history.catchUp(room, after));
        if (r.room) this.learnRoom(e, r.room);
        // Valid whatever happened to the connection meanwhile.
        const changes = e.state.applyAll(r.messages);
        e.state.markSynced(r.headRev);
        this.emitChanges(room, changes, "replay");
      }
    } catch (err) {
      if (this.conn !== c || err instanceof AuthFailure) return;
      const code = err instanceof HttpError ? err.code : "NETWORK";
      const detail = err instanceof Error ? err.message : String(err);
      this.emit("error", { room, code, detail, fatal: false });
      // (A refused token never gets here: authorized() turned it into an AuthFailure.)
      if (err instanceof HttpError && !err.transient) {
        e.phase = "failed";
        this.maybeLive(c);
      } else {
        // The database is not reachable right now: treat it like a lost link.
        c.transport.abandon(CLOSE_CLIENT_GAVE_UP, `catch-up failed: ${detail}`);
      }
      return;
    }
    if (this.conn !== c) return; // that connection is gone; the next one syncs again
    e.phase = "subscribing";
    e.subscribeRequest = this.sendFrame(c, {
      case: "subscribe",
      value: { room, resumeAfterRev: e.state.syncedRev },
    });
  }

  /** On the authenticated connection `c`: live once every room is; then unsent sends go out. */
  private maybeLive(c: Connection): void {
    for (const e of this.rooms.values()) if (e.phase !== "live" && e.phase !== "failed") return;
    // The token is accepted once the core took it too (a subscribe can
    // still be refused TOKEN_EXPIRED after the gateway's Authenticated).
    this.tokens.accepted();
    this.backoff.reset();
    this.setState("live");
    for (const p of this.outbox.pending()) if (p.requestId === 0n && this.canPublish(c, p.room)) this.publish(c, p);
  }

  /** The connection ended (close, heartbeat, timeout, offline). */
  private lost(c: Connection, reason: string, code: number): void {
    // After close() or a sign-in error this.conn is null already, and
    // nothing below retries (scheduleRetry and open check for that).
    this.conn = null;
    this.teardown(c);
    if (code === CLOSE_UNAUTH || code === CLOSE_TOKEN_EXPIRED) {
      // Refused at authenticate, or the session outlived its token (4402):
      // either way this token will never do again, and retrying it on a
      // backoff would only loop. A fresh one opens a connection at once.
      void this.renewRejected(c.token ?? "", reason, code === CLOSE_TOKEN_EXPIRED ? "TOKEN_EXPIRED" : "UNAUTHENTICATED");
    } else if (code === CLOSE_RATE) {
      // The server's bucket is empty: coming back at once would only empty
      // it again. Wait at least until a whole bucket refilled.
      const refill = (this.stated.frameBurst / this.stated.frameRate) * MS_PER_SECOND;
      this.scheduleRetry(reason, Math.max(RATE_LIMITED_MIN_DELAY_MS, Math.ceil(refill)));
    } else {
      this.scheduleRetry(reason);
    }
  }

  /** The server refused the connection's token: ask for a fresh one, or stop. */
  private async renewRejected(token: string, reason: string, code: AuthErrorCode): Promise<void> {
    this.setState("connecting", { reason });
    try {
      await this.tokens.replace(token);
    } catch (err) {
      if (err instanceof AuthFailure) this.signInFailed(err, code);
      else this.scheduleRetry(reason);
      return;
    }
    // open() does nothing after close() or a sign-in error; the network's
    // 'online' may have opened a connection meanwhile.
    if (this.conn || this.retryTimer !== undefined) return;
    this.open();
  }

  /** Signing in failed for good: stop retrying until the app calls reconnect(). */
  private signInFailed(failure: AuthFailure, code: AuthErrorCode = "UNAUTHENTICATED"): void {
    if (this.stopped || this.signedOut) return;
    this.signedOut = true;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const c = this.conn;
    this.conn = null;
    if (c) {
      this.teardown(c);
      c.transport.abandon(CLOSE_NORMAL, "signed out");
    }
    this.setState("unauthenticated", { reason: failure.message });
    this.emit("error", { code, detail: failure.message, fatal: true });
    this.emit("auth-error", { code, reason: failure.reason, detail: failure.message });
  }

  private teardown(c: Connection): void {
    c.pacer.stop();
    c.heartbeat?.stop();
    c.heartbeat = null;
    this.clock.clearTimeout(c.connectTimer);
    c.connectTimer = undefined;
    this.outbox.connectionLost();
    for (const p of this.outbox.pending()) p.requestId = 0n;
    for (const e of this.rooms.values()) {
      if (e.phase !== "failed") e.phase = "idle";
      // Typing is live only: nobody is shown typing across a gap.
      e.typing.clear();
    }
  }

  private scheduleRetry(reason: string, minDelayMs = 0): void {
    if (this.stopped || this.signedOut || this.retryTimer !== undefined) return;
    const delay = Math.max(minDelayMs, this.backoff.next());
    this.setState("offline", { retryInMs: delay, reason });
    this.retryTimer = this.clock.setTimeout(() => this.open(), delay);
  }

  private networkOffline(): void {
    // The browser knows the link is gone: do not wait for the heartbeat.
    const c = this.conn;
    if (c) c.transport.abandon(CLOSE_CLIENT_GAVE_UP, "browser offline");
  }

  private networkOnline(): void {
    if (this.stopped || this.signedOut || this.conn) return;
    // The network is back: try now instead of sleeping out the backoff.
    this.clock.clearTimeout(this.retryTimer);
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

  /** Queues one frame behind the pacer; returns its request id. */
  private sendFrame(
    c: Connection,
    kind: MessageInitShape<typeof ClientFrameSchema>["kind"],
    priority: FramePriority = "control",
  ): bigint {
    const requestId = this.nextRequest++;
    const frame = create(ClientFrameSchema, { requestId, kind });
    c.pacer.submit(() => c.transport.send(frame), priority);
    return requestId;
  }

  /**
   * What a Room from the server says: limits, settings, and (when it
   * carries `me`) the user's own access, the server's word on it.
   */
  private learnRoom(e: RoomEntry, room: Room): void {
    if (room.maxBodyBytes > 0) e.maxBody = room.maxBodyBytes;
    const modeChanged = e.info !== null && e.info.mode !== room.mode;
    e.info = room;
    if (room.me) this.setAccess(e, room.me);
    else if (modeChanged && e.access) this.setAccess(e, withPostRule(e.access, room.mode, this.clock.now()));
  }

  /** An edit or delete this client made: applied now, by rev like any copy. */
  private applyOwnChange(room: string, m: Message): void {
    const change = this.rooms.get(room)?.state.apply(m);
    if (change) this.emitChanges(room, [change], "live");
  }

  /** A publish to `room` may go out on `c` now: authenticated, and the room (if followed) live. */
  private canPublish(c: Connection | null, room: string): c is Connection {
    if (!c?.authenticated) return false;
    const e = this.rooms.get(room);
    return e === undefined || e.phase === "live";
  }

  private frameSize(p: Pick<Pending, "room" | "clientMsgId" | "body">): number {
    const frame = create(ClientFrameSchema, {
      requestId: this.nextRequest,
      kind: { case: "publish", value: { room: p.room, clientMsgId: p.clientMsgId, body: p.body } },
    });
    const encoded = encodeClientFrame(frame, this.format);
    return typeof encoded === "string" ? new TextEncoder().encode(encoded).length : encoded.length;
  }

  private publish(c: Connection, p: Pending): void {
    const id = this.sendFrame(
      c,
      { case: "publish", value: { room: p.room, clientMsgId: p.clientMsgId, body: p.body } },
      "publish",
    );
    this.outbox.sent(p.clientMsgId, id);
  }

  private onEvent(ev: EventFrame): void {
    const m = ev.message;
    if (!m) return;
    const e = this.rooms.get(m.room);
    if (!e || (e.phase !== "subscribing" && e.phase !== "live")) return;
    const change = e.state.applyStream(m);
    if (change?.kind === "created" && m.author) e.typing.stopped(m.author.id);
    if (change) this.emitChanges(m.room, [change], ev.replay ? "replay" : "live");
  }

  /** An ack answers the request id of the publish frame (the gateway echoes it). */
  private onAck(requestId: bigint, message: Message | undefined, duplicate: boolean): void {
    const p = this.outbox.byRequestId(requestId);
    if (!p) return;
    this.outbox.settle(p.clientMsgId);
    this.emit("ack", { room: p.room, pending: p, duplicate, ...(message ? { message } : {}) });
    const e = this.rooms.get(p.room);
    if (message && e) {
      // Content only: the ack says nothing about the revs before this one.
      const change = e.state.apply(message);
      if (change) this.emitChanges(p.room, [change], "live");
    }
  }

  private onError(c: Connection, requestId: bigint, err: ErrorFrame): void {
    const code = ErrorCode[err.code] ?? String(err.code);
    if (err.code === ErrorCode.TOKEN_EXPIRED) {
      // The session's token expired: the gateway closes 4402 (after this
      // frame, or within a second when a request met the expiry first).
      // Handled as that close: a fresh token, a new connection, every room
      // subscribed and every unacked send resent there. Not a room's failure,
      // and not reported: a renewal is routine; 'auth-error' follows if no
      // fresh token comes.
      c.transport.abandon(CLOSE_TOKEN_EXPIRED, `${code}: ${err.detail}`);
      return;
    }
    const p = this.outbox.byRequestId(requestId);
    if (p) {
      if (PERMANENT_SEND_ERRORS.has(err.code)) {
        this.outbox.settle(p.clientMsgId);
        const rule = err.rule !== Rule.UNSPECIFIED ? (Rule[err.rule] ?? String(err.rule)) : undefined;
        this.emit("send-error", { room: p.room, pending: p, code, detail: err.detail, ...(rule ? { rule } : {}) });
        // Refused by an access rule: what the user may do changed (a mute,
        // a mode) and the server says exactly how.
        if (rule && this.rooms.has(p.room)) this.refreshAccess(p.room).catch(() => {});
      } else {
        // Kept, and tried again (same clientMsgId) after a pause, or on the
        // next connection if this one ends first.
        this.emit("error", { room: p.room, code, detail: err.detail, fatal: err.fatal });
        p.requestId = 0n;
        const delay = Math.max(SEND_RETRY_MIN_DELAY_MS, this.backoff.ceiling(Math.min(p.attempts, SEND_RETRY_MAX_STEP)));
        this.clock.setTimeout(() => {
          // Unless settled meanwhile, or already sent again on a new connection.
          const now = this.conn;
          if (this.outbox.get(p.clientMsgId) === p && p.requestId === 0n && this.canPublish(now, p.room)) {
            this.publish(now, p);
          }
        }, delay);
      }
    } else {
      let room: string | undefined;
      for (const e of this.rooms.values()) {
        // Refused at subscribe, or ended later by the core (docs/gateway.md,
        // "Access"): the user was removed, the room became members only or
        // was deleted. Any other late error leaves a live room alone.
        const ended = e.phase === "live" && (err.code === ErrorCode.PERMISSION_DENIED || err.code === ErrorCode.ROOM_NOT_FOUND);
        if (requestId !== 0n && e.subscribeRequest === requestId && (e.phase === "subscribing" || ended)) {
          room = e.state.name;
          e.phase = "failed";
        }
      }
      const rule = err.rule !== Rule.UNSPECIFIED ? (Rule[err.rule] ?? String(err.rule)) : undefined;
      this.emit("error", { ...(room ? { room } : {}), code, detail: err.detail, fatal: err.fatal, ...(rule ? { rule } : {}) });
      this.maybeLive(c); // a failed room no longer holds the others back
    }
    if (err.fatal) {
      // A refused token is followed by close 4401: handle it as that close.
      const close = err.code === ErrorCode.UNAUTHENTICATED ? CLOSE_UNAUTH : CLOSE_CLIENT_GAVE_UP;
      c.transport.abandon(close, `fatal ${code}`);
    }
  }

  /**
   * Reports applied changes: a send seen stored is acked; history pages are
   * reported as one 'history' event by the caller; others one event each,
   * 'replay' marking what was missed (catch-up, stream replay).
   */
  private emitChanges(room: string, changes: Change[], source: "history" | "replay" | "live"): void {
    const replay = source === "replay";
    for (const ch of changes) {
      const settled = this.outbox.settleStored(ch.message, this.me?.id ?? null);
      if (settled) this.emit("ack", { room, pending: settled, message: ch.message, duplicate: false });
      if (source === "history") continue;
      if (ch.kind === "created") this.emit("message", { room, message: ch.message, replay });
      else if (ch.kind === "edited") this.emit("edit", { room, message: ch.message, previous: ch.previous });
      else this.emit("delete", { room, message: ch.message, ...(ch.previous ? { previous: ch.previous } : {}) });
    }
  }
}

/** Creates a client and starts connecting. */
export function connect(options: ConnectOptions): ParleyClient {
  return new ParleyClient(options).start();
}
