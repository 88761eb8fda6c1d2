// Unit-test doubles: an in-memory room store with the gateway's rules (seq,
// rev, idempotent publish), a WebSocket double speaking the wire contract over
// it, and a fetch double serving its REST view. The end-to-end tests in
// tests/browser/ use the real gateway; these only drive the client's logic.
import { create, fromBinary, fromJsonString, toBinary, toJson, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ActionKind,
  ErrorCode,
  type Message,
  MessageSchema,
  ListMessagesResponseSchema,
  type ClientFrame,
  ClientFrameSchema,
  EventType,
  MarkReadRequestSchema,
  MarkReadResponseSchema,
  ModerateAction,
  ModerateRequestSchema,
  ModerateResponseSchema,
  type ModerationAction,
  ModerationActionSchema,
  RoomMode,
  RoomSchema,
  Role,
  Rule,
  ServerFrameSchema,
  UpdateRoomRequestSchema,
  UpdateRoomResponseSchema,
} from "../src/protocol.js";
import { CLOSE_RATE, CLOSE_TOKEN_EXPIRED, CLOSE_UNAUTH, CLOSE_UPSTREAM } from "../src/constants.js";
import type { FetchLike } from "../src/history.js";
import type { WebSocketLike } from "../src/transport.js";

export class FakeStore {
  readonly room: string;
  /** The core's --max-body; 0 leaves Room.maxBodyBytes unstated (an older core). */
  maxBody = 4096;
  private readonly bySeq = new Map<bigint, Message>();
  headSeq = 0n;
  headRev = 0n;
  /** Every stored publish, to count how often a clientMsgId was stored. */
  readonly stored: Message[] = [];
  readonly listeners = new Set<(m: Message, type: EventType) => void>();

  constructor(room = "lobby") {
    this.room = room;
  }

  /** When the next message is stored, in ms since the epoch (default: a fixed instant + seq). */
  createdAtMs: number | null = null;

  // ---- access and moderation, with the core's rules (src/core/access.c) ----
  mode: RoomMode = RoomMode.OPEN;
  /** Muted users: id → until (ms since the epoch; 0n until lifted). */
  readonly muted = new Map<string, bigint>();
  /** Every room action stored, in order. */
  readonly actions: ModerationAction[] = [];
  /** Read state per user. */
  readonly readBy = new Map<string, { seq: bigint; rev: bigint }>();
  /** Rooms carry `me` (false: an older core that states none). */
  statesAccess = true;
  /** A role the core gives a user here other than the token's (a membership, or none: Role.UNSPECIFIED). */
  readonly roles = new Map<string, Role>();

  /** The rule that refuses a post by `who` now, or UNSPECIFIED. */
  postRule(who: { id: string; organizer: boolean }): Rule {
    if (this.mode === RoomMode.CLOSED) return Rule.ROOM_CLOSED;
    if (who.organizer) return Rule.UNSPECIFIED;
    if (this.mode === RoomMode.ANNOUNCEMENTS) return Rule.ANNOUNCEMENTS;
    const until = this.muted.get(who.id);
    if (until !== undefined && (until === 0n || Number(until) > Date.now())) return Rule.MUTED;
    return Rule.UNSPECIFIED;
  }

  /** The Room as the core states it to `who` (with `me`), or to everyone (without). */
  roomFor(who?: { id: string; organizer: boolean }) {
    const base = { ...this.roomInfo(), mode: this.mode };
    if (!who || !this.statesAccess) return base;
    const rule = this.roles.get(who.id) === Role.UNSPECIFIED ? Rule.NOT_GRANTED : this.postRule(who);
    const until = this.muted.get(who.id);
    const read = this.readBy.get(who.id);
    return {
      ...base,
      me: {
        role: this.roles.get(who.id) ?? (who.organizer ? Role.ORGANIZER : Role.PARTICIPANT),
        canPost: rule === Rule.UNSPECIFIED,
        postRule: rule,
        muted: rule === Rule.MUTED,
        mutedUntilMs: rule === Rule.MUTED ? (until ?? 0n) : 0n,
        lastReadSeq: read?.seq ?? 0n,
        lastReadRev: read?.rev ?? 0n,
      },
    };
  }

  /** Stores an action (what the core's Rooms service does) and returns it. */
  act(init: MessageInitShape<typeof ModerationActionSchema>): ModerationAction {
    const a = create(ModerationActionSchema, {
      ...init,
      id: BigInt(this.actions.length + 1),
      room: this.room,
      atMs: BigInt(Date.now()),
    });
    this.actions.push(a);
    for (const l of this.actionListeners) l(a);
    return a;
  }
  readonly actionListeners = new Set<(a: ModerationAction) => void>();

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
      createdAtMs: this.createdAtMs !== null ? BigInt(this.createdAtMs) : 1_700_000_000_000n + this.headSeq,
    });
    this.bySeq.set(m.seq, m);
    this.stored.push(m);
    for (const l of this.listeners) l(m, EventType.CREATED);
    return { message: m, duplicate: false };
  }

  get(seq: bigint): Message | undefined {
    return this.bySeq.get(seq);
  }

  roomInfo(): { name: string; headSeq: bigint; headRev: bigint; maxBodyBytes: number } {
    return { name: this.room, headSeq: this.headSeq, headRev: this.headRev, maxBodyBytes: this.maxBody };
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
  /** Tokens the gateway refuses (badly signed, unknown): error + close 4401, REST 401. */
  readonly rejected = new Set<string>();
  /** Tokens past their exp: error{TOKEN_EXPIRED} + close 4402, REST 401 TOKEN_EXPIRED. */
  readonly expired = new Set<string>();
  /**
   * The core calls every token expired while the gateway still takes it (the
   * core's clock ahead of the gateway's): REST 401 TOKEN_EXPIRED, subscribes
   * refused TOKEN_EXPIRED.
   */
  coreExpired = false;
  /** Limits stated in Authenticated (none: an older gateway). */
  limits: { maxFrameBytes?: number; frameRate?: number; frameBurst?: number } | null = null;
  /** Enforce a token bucket over every client frame, as the gateway's --rate/--burst (close 4429). */
  enforceRate: { rate: number; burst: number } | null = null;
  /**
   * Live events stay queued on each socket (in flight) until releaseEvents();
   * acks still go out at once. A socket that closes loses what it held.
   */
  holdEvents = false;
  /** Subscribed answers stay queued on each socket until releaseSubscribed() (a slow replay). */
  holdSubscribed = false;
  /** REST calls answered, as "METHOD path?query". */
  readonly requests: string[] = [];
  /** Every frame any client sent, in order. */
  readonly received: ClientFrame[] = [];

  /** Every room the gateway serves, by name (`store` is the first). */
  readonly rooms = new Map<string, FakeStore>();
  /** Subscribes to these rooms are refused with this code (the room's REST view still works). */
  readonly refuseSubscribe = new Map<string, ErrorCode>();
  /** Authenticate frames get no answer (a gateway stuck before Authenticated). */
  silentAuth = false;
  /** Pongs are answered this much later (a slow link), in ms. */
  pongDelayMs = 0;
  /** Acks go out this much later than the commit, in ms. */
  ackDelayMs = 0;
  /** Authenticated names no user (a gateway that does not say). */
  anonymous = false;
  /** Presence goes out to the room after every subscribe. */
  autoPresence = true;
  /** The Rooms REST calls see no organizer (a role taken away behind the client's back). */
  rejectModeration = false;

  constructor(store = new FakeStore()) {
    this.store = store;
    this.addRoom(store);
  }

  /** Serves another room. */
  addRoom(store: FakeStore | string): FakeStore {
    const st = typeof store === "string" ? new FakeStore(store) : store;
    this.rooms.set(st.room, st);
    st.listeners.add((m, type) => {
      for (const s of this.sockets) {
        if (s.subscribed.has(m.room)) s.push({ kind: { case: "event", value: { type, message: m } } });
      }
    });
    // Room actions go live to every session watching the room (no `me`).
    st.actionListeners.add((action) => {
      for (const s of this.sockets) {
        if (s.subscribed.has(st.room)) s.push({ kind: { case: "roomEvent", value: { action, room: st.roomFor() } } });
      }
    });
    return st;
  }

  /** Sends every presence-watching session of `room` who is there (each subscribed user once). */
  pushPresence(room: string): void {
    const users = new Map<string, string>();
    for (const s of this.sockets) if (s.subscribed.has(room)) users.set(s.user, s.user);
    const list = [...users.keys()].sort().map((id) => ({ id, displayName: id }));
    for (const s of this.sockets) {
      if (s.subscribed.has(room) && s.presence) {
        s.push({ kind: { case: "presence", value: { room, count: list.length, users: list, truncated: false } } });
      }
    }
  }

  get WebSocket(): new (url: string, protocols?: string | string[]) => WebSocketLike {
    const gw = this;
    return class extends FakeSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(gw, url, protocols);
      }
    };
  }

  /** Sends the Subscribed answers every socket holds (see holdSubscribed). */
  releaseSubscribed(): void {
    for (const s of this.sockets) s.release("subscribed");
  }

  /** Releases the live events every socket holds (see holdEvents). */
  releaseEvents(): void {
    for (const s of this.sockets) s.release();
  }

  /** Serves the gateway's REST routes for messages from the store. */
  readonly fetch: FetchLike = async (input, init) => {
    const u = new URL(input);
    const method = init?.method ?? "GET";
    this.requests.push(`${method} ${u.pathname}${u.search}`);
    if (this.blackhole || this.deafClient || this.refuse) {
      // Like a dead link, only faster: the client's timeout would fire.
      throw new TypeError("Failed to fetch");
    }
    const auth = new Headers(init?.headers).get("authorization") ?? "";
    const token = auth.replace(/^Bearer /, "");
    if (!token || this.rejected.has(token)) {
      return jsonResponse(401, { code: "UNAUTHENTICATED", detail: "invalid or badly signed token" });
    }
    if (this.expired.has(token) || this.coreExpired) return jsonResponse(401, { code: "TOKEN_EXPIRED", detail: "the token has expired; renew it" });
    const r = /^\/v1\/rooms\/([^/]+)(\/moderation|\/read)?$/.exec(u.pathname);
    if (r) {
      const store = this.rooms.get(decodeURIComponent(r[1] as string));
      if (!store) return jsonResponse(404, { code: "ROOM_NOT_FOUND", detail: "no room" });
      return this.roomCall(store, method, r[2] ?? "", tokenUser(token), String(init?.body ?? ""));
    }
    const m = /^\/v1\/rooms\/([^/]+)\/messages(?:\/(\d+))?$/.exec(u.pathname);
    if (!m) return jsonResponse(404, { code: "NOT_FOUND", detail: u.pathname });
    const store = this.rooms.get(decodeURIComponent(m[1] as string));
    if (!store) return jsonResponse(404, { code: "ROOM_NOT_FOUND", detail: "no room" });
    if (m[2] !== undefined) return this.oneMessage(store, method, BigInt(m[2]), tokenUser(token), init?.body);
    const page = store.list(u.searchParams);
    const body = create(ListMessagesResponseSchema, { ...page, room: store.roomFor(tokenUser(token)) });
    return jsonResponse(200, toJson(ListMessagesResponseSchema, body));
  };

  /** GET, PATCH or DELETE /v1/rooms/{room}/messages/{seq}, with the core's permission rule. */
  private oneMessage(
    store: FakeStore,
    method: string,
    seq: bigint,
    who: { id: string; organizer: boolean },
    body: unknown,
  ): Response {
    const old = store.get(seq);
    if (!old) return jsonResponse(404, { code: "MESSAGE_NOT_FOUND", detail: "no such message" });
    if (method === "GET") return jsonResponse(200, toJson(MessageSchema, old));
    if (old.author?.id !== who.id && !who.organizer) {
      return jsonResponse(403, { code: "PERMISSION_DENIED", detail: "only the author or an organizer" });
    }
    if (method === "DELETE") return jsonResponse(200, toJson(MessageSchema, store.remove(seq)));
    const text = (JSON.parse(String(body)) as { body?: string }).body ?? "";
    if (!text.trim()) return jsonResponse(400, { code: "BODY_EMPTY", detail: "empty" });
    return jsonResponse(200, toJson(MessageSchema, store.edit(seq, text)));
  }

  /**
   * The Rooms routes of the gateway's REST API: GET and PATCH (mode) of a
   * room, POST .../moderation, POST .../read. Bodies are parsed as the
   * gateway does (proto3 JSON), so a malformed one is a 400.
   */
  private roomCall(store: FakeStore, method: string, sub: string, caller: { id: string; organizer: boolean }, body: string): Response {
    const who = this.rejectModeration ? { ...caller, organizer: false } : caller;
    const organizerOnly = () =>
      jsonResponse(403, { code: "PERMISSION_DENIED", rule: "ORGANIZER_ONLY", detail: "only the room's organizers may do this (rule ORGANIZER_ONLY)" });
    try {
      if (sub === "" && method === "GET") return jsonResponse(200, toJson(RoomSchema, create(RoomSchema, store.roomFor(who))));
      if (sub === "" && method === "PATCH") {
        const req = fromJsonString(UpdateRoomRequestSchema, body);
        if (!who.organizer) return organizerOnly();
        const actions: ModerationAction[] = [];
        if (req.mode !== RoomMode.UNSPECIFIED && req.mode !== store.mode) {
          store.mode = req.mode;
          actions.push(store.act({ kind: ActionKind.SET_MODE, mode: req.mode, actor: { id: who.id, displayName: who.id, role: Role.ORGANIZER } }));
        }
        const res = create(UpdateRoomResponseSchema, { room: store.roomFor(who), actions });
        return jsonResponse(200, toJson(UpdateRoomResponseSchema, res));
      }
      if (sub === "/moderation" && method === "POST") {
        const req = fromJsonString(ModerateRequestSchema, body);
        if (!who.organizer) return organizerOnly();
        const actor = { id: who.id, displayName: who.id, role: Role.ORGANIZER };
        let action: ModerationAction;
        if (req.action === ModerateAction.MUTE) {
          const until = req.durationMs > 0n ? BigInt(Date.now()) + req.durationMs : 0n;
          store.muted.set(req.userId, until);
          action = store.act({ kind: ActionKind.MUTE, actor, targetUserId: req.userId, untilMs: until, reason: req.reason });
        } else if (req.action === ModerateAction.UNMUTE) {
          store.muted.delete(req.userId);
          action = store.act({ kind: ActionKind.UNMUTE, actor, targetUserId: req.userId });
        } else if (req.action === ModerateAction.REMOVE) {
          action = store.act({ kind: ActionKind.REMOVE, actor, targetUserId: req.userId, reason: req.reason });
          // As the gateway does: the removed user's subscriptions end.
          for (const sock of this.sockets) {
            const id = sock.subscribeRequests.get(store.room);
            if (sock.user !== req.userId || id === undefined || !sock.subscribed.has(store.room)) continue;
            sock.subscribed.delete(store.room);
            sock.push({ requestId: id, kind: { case: "error", value: { code: ErrorCode.PERMISSION_DENIED, rule: Rule.REMOVED, detail: "an organizer removed you from this room (rule REMOVED)" } } });
            sock.push({ requestId: id, kind: { case: "unsubscribed", value: { room: store.room } } });
          }
        } else {
          return jsonResponse(400, { code: "MALFORMED", detail: "action" });
        }
        return jsonResponse(200, toJson(ModerateResponseSchema, create(ModerateResponseSchema, { action })));
      }
      if (sub === "/read" && method === "POST") {
        const req = fromJsonString(MarkReadRequestSchema, body);
        const old = store.readBy.get(who.id);
        const next = old && old.seq >= req.seq ? old : { seq: req.seq, rev: req.rev };
        store.readBy.set(who.id, next);
        const unread = store.all().filter((m) => m.seq > next.seq && !m.deleted && m.author?.id !== who.id).length;
        const res = create(MarkReadResponseSchema, { lastReadSeq: next.seq, lastReadRev: next.rev, unreadCount: unread });
        return jsonResponse(200, toJson(MarkReadResponseSchema, res));
      }
    } catch (e) {
      return jsonResponse(400, { code: "MALFORMED", detail: e instanceof Error ? e.message : String(e) });
    }
    return jsonResponse(405, { code: "MALFORMED", detail: `${method} not allowed` });
  }

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

/** Tokens of the fakes are user ids; "id@organizer" signs in an organizer. */
export function tokenUser(token: string): { id: string; organizer: boolean } {
  const [id, role] = token.split("@");
  return { id: id as string, organizer: role === "organizer" };
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
  /** The request id of each room's subscribe (errors that end it later carry it). */
  readonly subscribeRequests = new Map<string, bigint>();
  user = "";
  organizer = false;
  /** The client turned on SessionOptions.presence / typing. */
  presence = false;
  typing = false;
  /** The client turned on SessionOptions.batch. */
  batch = false;
  closedByClient: number | null = null;
  closedByServer: number | null = null;
  /** The reason the client gave when it closed. */
  closeReason = "";
  /** The subprotocols the client offered. */
  offered: string[] = [];
  /** Live events held back while the gateway's holdEvents is on. */
  private held: ArrayBuffer[] = [];
  private heldSubscribed: ArrayBuffer[] = [];
  private tokens = 0;
  private lastMs = 0;
  private readonly gw: FakeGateway;

  constructor(gw: FakeGateway, readonly url: string, protocols?: string | string[]) {
    this.gw = gw;
    gw.sockets.push(this);
    const offered = typeof protocols === "string" ? [protocols] : (protocols ?? []);
    this.offered = offered;
    setTimeout(() => {
      if (gw.blackhole || gw.deafClient) return; // the handshake never completes
      if (gw.refuse || !offered.includes("parley.v1.proto")) {
        this.readyState = 3;
        this.onclose?.({ code: 1006, reason: "" });
        return;
      }
      this.protocol = "parley.v1.proto";
      this.readyState = 1;
      this.tokens = gw.enforceRate?.burst ?? 0;
      this.lastMs = Date.now();
      this.onopen?.({});
    }, 0);
  }

  send(data: string | ArrayBufferLike | ArrayBufferView): void {
    if (this.readyState !== 1) throw new Error("not open");
    if (this.gw.blackhole) return;
    const bytes = data instanceof Uint8Array ? data : new Uint8Array(data as ArrayBuffer);
    const f = fromBinary(ClientFrameSchema, bytes);
    this.gw.received.push(f);
    const rate = this.gw.enforceRate;
    if (rate) {
      // The gateway's token bucket (gw_ws.c rate_ok), on the fake clock.
      const now = Date.now();
      this.tokens = Math.min(rate.burst, this.tokens + ((now - this.lastMs) / 1000) * rate.rate);
      this.lastMs = now;
      if (this.tokens < 1) {
        setTimeout(() => this.serverClose(CLOSE_RATE), 0);
        return;
      }
      this.tokens -= 1;
    }
    const k = f.kind;
    switch (k.case) {
      case "authenticate": {
        if (this.gw.silentAuth) break;
        if (this.gw.expired.has(k.value.token)) {
          // the gateway refuses a token past its exp: TOKEN_EXPIRED, close 4402
          this.push({ requestId: f.requestId, kind: { case: "error", value: { code: ErrorCode.TOKEN_EXPIRED, detail: "the token has expired; renew it", fatal: true } } });
          setTimeout(() => this.serverClose(CLOSE_TOKEN_EXPIRED), 0);
          break;
        }
        if (this.gw.rejected.has(k.value.token) || !k.value.token) {
          this.push({ requestId: f.requestId, kind: { case: "error", value: { code: ErrorCode.UNAUTHENTICATED, detail: "token missing, invalid or expired", fatal: true } } });
          setTimeout(() => this.serverClose(CLOSE_UNAUTH), 0);
          break;
        }
        const who = tokenUser(k.value.token);
        this.user = who.id;
        this.organizer = who.organizer;
        const role = who.organizer ? Role.ORGANIZER : Role.PARTICIPANT;
        this.push({
          requestId: f.requestId,
          kind: {
            case: "authenticated",
            value: {
              ...(this.gw.anonymous ? {} : { user: { id: this.user, displayName: this.user, role } }),
              ...(this.gw.limits ? { limits: this.gw.limits } : {}),
            },
          },
        });
        break;
      }
      case "ping": {
        const pong: FrameInit = { requestId: f.requestId, kind: { case: "pong", value: { nonce: k.value.nonce } } };
        if (this.gw.pongDelayMs > 0) setTimeout(() => this.push(pong), this.gw.pongDelayMs);
        else this.push(pong);
        break;
      }
      case "options":
        this.batch = k.value.batch;
        this.presence = k.value.presence;
        this.typing = k.value.typing;
        this.push({
          requestId: f.requestId,
          kind: { case: "options", value: { batch: this.batch, presence: this.presence, typing: this.typing } },
        });
        break;
      case "typing": {
        // Passed on to the room's other sessions that asked for typing.
        const room = k.value.room;
        for (const s of this.gw.sockets) {
          if (s !== this && s.typing && s.subscribed.has(room)) {
            s.push({ kind: { case: "typing", value: { room, user: { id: this.user, displayName: this.user } } } });
          }
        }
        break;
      }
      case "subscribe": {
        const store = this.gw.rooms.get(k.value.room);
        const refused = !store
          ? ErrorCode.ROOM_NOT_FOUND
          : this.gw.coreExpired
            ? ErrorCode.TOKEN_EXPIRED
            : this.gw.refuseSubscribe.get(k.value.room);
        if (!store || refused !== undefined) {
          this.push({ requestId: f.requestId, kind: { case: "error", value: { code: refused, detail: "refused" } } });
          break;
        }
        // as the gateway does: the replay and Subscribed in one batch when
        // the client turned batches on (one by one while Subscribed is held)
        const frames: FrameInit[] = [];
        for (const m of store.changedAfter(k.value.resumeAfterRev)) {
          frames.push({ kind: { case: "event", value: { type: EventType.CREATED, message: m, replay: true } } });
        }
        this.subscribed.add(k.value.room);
        this.subscribeRequests.set(k.value.room, f.requestId);
        frames.push({
          requestId: f.requestId,
          kind: { case: "subscribed", value: { room: store.roomFor({ id: this.user, organizer: this.organizer }) } },
        });
        if (this.batch && !this.gw.holdSubscribed) this.push({ kind: { case: "batch", value: { frames } } });
        else for (const fr of frames) this.push(fr);
        if (this.gw.autoPresence) this.gw.pushPresence(k.value.room);
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
        const target = this.gw.rooms.get(k.value.room);
        if (!target) {
          this.push({ requestId: f.requestId, kind: { case: "error", value: { code: ErrorCode.ROOM_NOT_FOUND, detail: "no room" } } });
          break;
        }
        const max = target.maxBody;
        if (max > 0 && new TextEncoder().encode(k.value.body).length > max) {
          this.push({ requestId: f.requestId, kind: { case: "error", value: { code: ErrorCode.BODY_TOO_LONG, detail: "body too long" } } });
          break;
        }
        if (this.gw.losePublishes > 0) {
          this.gw.losePublishes--;
          setTimeout(() => this.serverClose(CLOSE_UPSTREAM), 0);
          break;
        }
        const rule = target.postRule({ id: this.user, organizer: this.organizer });
        if (rule !== Rule.UNSPECIFIED) {
          const detail = `refused (rule ${Rule[rule]})`;
          this.push({ requestId: f.requestId, kind: { case: "error", value: { code: ErrorCode.PERMISSION_DENIED, rule, detail } } });
          break;
        }
        const r = target.publish(this.user, k.value.clientMsgId, k.value.body);
        const ack: FrameInit = {
          requestId: f.requestId,
          kind: { case: "ack", value: { clientMsgId: k.value.clientMsgId, message: r.message, duplicate: r.duplicate } },
        };
        if (this.gw.ackDelayMs > 0) setTimeout(() => this.push(ack), this.gw.ackDelayMs);
        else this.push(ack);
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
    if (this.gw.holdEvents && init.kind?.case === "event" && !init.kind.value.replay) {
      this.held.push(buf);
      return;
    }
    if (this.gw.holdSubscribed && init.kind?.case === "subscribed") {
      this.heldSubscribed.push(buf);
      return;
    }
    this.deliver(buf);
  }

  /** Delivers the held live events (or Subscribed answers), in order. */
  release(what: "events" | "subscribed" = "events"): void {
    const held = what === "events" ? this.held : this.heldSubscribed;
    if (what === "events") this.held = [];
    else this.heldSubscribed = [];
    for (const buf of held) this.deliver(buf);
  }

  private deliver(buf: ArrayBuffer): void {
    queueMicrotask(() => {
      if (this.readyState === 1) this.onmessage?.({ data: buf });
    });
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState >= 2) return;
    this.closedByClient = code;
    this.closeReason = reason;
    this.readyState = 3;
    this.subscribed.clear();
    this.held = [];
    this.heldSubscribed = [];
    // A dead link never completes the close handshake.
    if (!this.gw.blackhole && !this.gw.deafClient) setTimeout(() => this.onclose?.({ code, reason: "" }), 0);
  }

  /**
   * The session outlived its token, as the gateway's sweep ends it
   * (gw_conn.c): error{TOKEN_EXPIRED, fatal} with request id 0, close 4402.
   */
  expire(): void {
    this.push({ kind: { case: "error", value: { code: ErrorCode.TOKEN_EXPIRED, detail: "the session's token expired; renew it", fatal: true } } });
    setTimeout(() => this.serverClose(CLOSE_TOKEN_EXPIRED), 0);
  }

  /** The server ends the connection (e.g. the core went down). */
  serverClose(code: number): void {
    if (this.readyState >= 2) return;
    this.closedByServer = code;
    this.readyState = 3;
    this.subscribed.clear();
    this.held = [];
    this.heldSubscribed = [];
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
