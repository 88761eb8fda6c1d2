// element: <parley-chat room="..." gateway="..." token="..." mode="...">, a
// standard custom element (shadow DOM, no framework) around one ParleyClient.
// It shows the room's history, then live messages, the connection state,
// who is here and who is typing, and a composer that is enabled only while
// the history is shown, the connection is live and the server lets the user
// post (a muted user, a read-only room: the reason is shown instead). With
// mode="organizer" and the organizer role in the room (the server's word,
// Room.me) it also shows the room's mode switch and, on each message of
// someone else, mute, unmute and remove buttons. It owns the wiring and the
// page-level behaviour (the status line, the composer and its errors,
// scrolling, the live region, the "new messages" divider, marking what the
// reader saw as read); rows are message-list.ts / message-view.ts, texts
// strings.ts, the stylesheet styles.ts, the event types events.ts.
import { type ConnectOptions, ParleyClient } from "./client.js";
import {
  DEFAULT_MAX_RENDERED,
  DEFAULT_MUTE_MS,
  FOLLOW_SLACK_PX,
  LOAD_OLDER_TRIGGER_PX,
  MS_PER_SECOND,
  PRESENCE_NAMES_SHOWN,
  RETRY_COUNTDOWN_MIN_MS,
  TYPING_NAMES_SHOWN,
} from "./constants.js";
import type { ParleyChatEventDetail, ParleyChatEventName, ParleyChatState } from "./events.js";
import { ActionKind, type Author, type Message, type ModerationAction, RoomMode, Rule } from "./gen/parley/v1/message_pb.js";
import { HttpError } from "./history.js";
import type { SendProblem } from "./limits.js";
import { MessageList, type ModerationRequest } from "./message-list.js";
import { ReadMarker } from "./read-marker.js";
import { type Pending, newClientMsgId } from "./outbox.js";
import { type ParleyChatStrings, mergeStrings } from "./strings.js";
import { STYLE } from "./styles.js";
import type { TokenProvider } from "./token-source.js";

export type { ParleyChatState } from "./events.js";

/** Errors after which the room will not be shown, whatever the connection does. */
const ROOM_ERRORS = new Set(["ROOM_NOT_FOUND", "ROOM_INVALID", "PERMISSION_DENIED", "ORIGIN_NOT_ALLOWED"]);
/** How many announcements the live region keeps (older ones were read out already). */
const ANNOUNCEMENTS_KEPT = 3;

const Base: typeof HTMLElement =
  typeof HTMLElement !== "undefined" ? HTMLElement : (class {} as unknown as typeof HTMLElement);

type StatusShown = ParleyChatState | "reconnecting" | "error";

/** The element's two faces: an attendee's, or an organizer's with moderation. */
export type ParleyChatMode = "participant" | "organizer";

/** The room modes the organizer's switch offers, as `<option value>`s. */
const MODE_OPTIONS: ReadonlyArray<{ value: string; mode: RoomMode }> = [
  { value: "open", mode: RoomMode.OPEN },
  { value: "announcements", mode: RoomMode.ANNOUNCEMENTS },
  { value: "closed", mode: RoomMode.CLOSED },
];

export class ParleyChatElement extends Base {
  static readonly observedAttributes = ["room", "gateway", "token", "format", "history-limit", "mode"];

  /** Supplies a token when the `token` attribute is not used (the older name of tokenProvider). */
  getToken: (() => string | Promise<string>) | null = null;
  /** Extra client options (timers, WebSocket, fetch...) applied at connect. */
  options: Partial<ConnectOptions> = {};
  /** Message rows kept in the DOM while the reader follows the end. */
  maxRendered = DEFAULT_MAX_RENDERED;

  private tokenProvider_: TokenProvider | null = null;
  private strings_: ParleyChatStrings = mergeStrings({});
  private client_: ParleyClient | null = null;
  private unsubscribers: Array<() => void> = [];
  private historyShown = false;
  /** Why the room cannot be shown (an ErrorCode name), if it cannot. */
  private roomError: string | null = null;
  private roomRule: string | null = null; /* the access rule of roomError */
  /** Set once live; a later 'connecting' is shown as a reconnect. */
  private wasLive = false;
  private lastRetryInMs: number | undefined;
  private readonly root: ShadowRoot;
  private readonly els: {
    status: HTMLElement;
    title: HTMLElement;
    log: HTMLElement;
    older: HTMLButtonElement;
    list: HTMLOListElement;
    pendingList: HTMLOListElement;
    empty: HTMLElement;
    announcer: HTMLElement;
    form: HTMLFormElement;
    input: HTMLTextAreaElement;
    send: HTMLButtonElement;
    error: HTMLElement;
    presence: HTMLElement;
    typing: HTMLElement;
    notice: HTMLElement;
    moderation: HTMLElement;
    roomMode: HTMLSelectElement;
    modeLabel: HTMLElement;
    moderationError: HTMLElement;
  };
  /** Authors muted in the room as far as the room events seen say (for the Unmute button): id → until (0n: until lifted). */
  private readonly mutedAuthors = new Map<string, bigint>();
  private readMarker: ReadMarker | null = null;
  private observer: IntersectionObserver | null = null;
  /** The unread divider is placed once per connection, at the first history page. */
  private unreadPlaced = false;
  /** A page shown again: the rows on screen are looked at afresh (nothing was marked read while hidden). */
  private readonly onVisibility = () => {
    const o = this.observer;
    if (!o || this.ownerDocument.visibilityState === "hidden") return;
    for (const li of this.els.list.querySelectorAll<HTMLElement>(":scope > li[data-seq]")) {
      o.unobserve(li);
      o.observe(li);
    }
  };
  private readonly rows: MessageList;
  /** Sends of this element still pending, by clientMsgId: their text comes back if refused. */
  private readonly typed = new Map<string, string>();
  private restartQueued = false;
  private loadingOlder = false;
  /** Whether to scroll to the end after the current batch; null: no batch. */
  private follow: boolean | null = null;

  constructor() {
    super();
    this.root = this.attachShadow({ mode: "open" });
    const doc = this.ownerDocument;
    const el = <K extends keyof HTMLElementTagNameMap>(tag: K, part: string, cls = part) => {
      const e = doc.createElement(tag);
      e.setAttribute("part", part);
      e.className = cls;
      return e;
    };
    const style = doc.createElement("style");
    style.textContent = STYLE;
    const chat = el("section", "container", "chat");
    const header = el("header", "header");
    const title = el("span", "title");
    const status = el("span", "status");
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    const presence = el("span", "presence", "presence-line");
    presence.hidden = true;
    header.append(title, presence, status);
    // The organizer's controls: the room's mode (mode="organizer" only).
    const moderation = el("div", "moderation", "moderation-bar");
    moderation.setAttribute("role", "group");
    moderation.hidden = true;
    const modeLabel = el("label", "room-mode-label");
    const roomMode = el("select", "room-mode");
    roomMode.id = "room-mode";
    modeLabel.htmlFor = "room-mode";
    for (const o of MODE_OPTIONS) {
      const opt = doc.createElement("option");
      opt.value = o.value;
      roomMode.append(opt);
    }
    const moderationError = el("span", "moderation-error", "error");
    moderationError.setAttribute("role", "alert");
    moderationError.hidden = true;
    moderation.append(modeLabel, roomMode, moderationError);
    const log = el("div", "log");
    const older = el("button", "load-older", "older");
    older.type = "button";
    older.hidden = true;
    const list = el("ol", "messages");
    const pendingList = el("ol", "pending");
    const empty = el("div", "empty");
    empty.hidden = true;
    log.append(older, empty, list, pendingList);
    // New messages are read out from here, not from the list: a history
    // page or a catch-up must not be read out as a flood.
    const announcer = el("div", "announcer", "visually-hidden");
    announcer.setAttribute("role", "log");
    announcer.setAttribute("aria-live", "polite");
    announcer.setAttribute("aria-relevant", "additions");
    // Who is typing: read out politely, replaced as it changes. Its line
    // keeps its height when empty, so the log does not jump under the
    // reader's pointer each time someone starts or stops typing.
    const typing = el("p", "typing", "typing-line");
    typing.setAttribute("aria-live", "polite");
    const form = el("form", "composer");
    // Why the user cannot write here now (muted, read-only room).
    const notice = el("p", "composer-notice", "composer-notice");
    notice.setAttribute("role", "status");
    notice.hidden = true;
    const input = el("textarea", "input");
    input.rows = 1;
    const send = el("button", "send");
    send.type = "submit";
    const error = el("p", "composer-error", "error");
    error.id = "composer-error";
    error.setAttribute("role", "alert");
    error.hidden = true;
    form.append(notice, input, send, error);
    chat.append(header, moderation, log, announcer, typing, form);
    this.root.append(style, chat);
    this.els = {
      status,
      title,
      log,
      older,
      list,
      pendingList,
      empty,
      announcer,
      form,
      input,
      send,
      error,
      presence,
      typing,
      notice,
      moderation,
      roomMode,
      modeLabel,
      moderationError,
    };
    this.rows = new MessageList(list, pendingList, {
      strings: () => this.strings_,
      now: () => new Date(),
      isMine: (m) => this.isMine(m),
      canModify: (m) => this.client_?.canModify(m) ?? false,
      check: (body) => this.problemText(this.client_?.check(this.room, body) ?? null),
      edit: async (seq, body) => {
        await this.client_?.edit(this.room, seq, body);
      },
      remove: async (seq) => {
        await this.client_?.delete(this.room, seq);
      },
      failure: (err) => this.failureText(err),
      moderation: (m) => this.moderationOf(m),
      moderate: (action, authorId) => this.moderate(action, authorId),
      rowAdded: (li) => this.observer?.observe(li),
      rowRemoved: (li) => this.observer?.unobserve(li),
    });
    roomMode.addEventListener("change", () => void this.changeMode());

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submit();
      }
    });
    input.addEventListener("input", () => {
      this.validateInput();
      if (input.value.trim() !== "") this.client_?.sendTyping(this.room);
    });
    older.addEventListener("click", () => void this.loadOlder());
    log.addEventListener("scroll", () => {
      if (log.scrollTop <= LOAD_OLDER_TRIGGER_PX && !older.hidden) void this.loadOlder();
    });
    this.applyStrings();
    // A constructor may not touch the host's attributes: shadow only here.
    this.render("idle", undefined, false);
  }

  /** The client behind the element (null while not connected). */
  get client(): ParleyClient | null {
    return this.client_;
  }

  get room(): string {
    return this.getAttribute("room") ?? "";
  }
  set room(v: string) {
    this.setAttribute("room", v);
  }

  // The attributes as properties too: React 19 and Vue set a property when
  // the element has one of that name (and the attribute otherwise), so a
  // name the element owns must reflect to its attribute.

  /** The gateway's base URL (the `gateway` attribute). */
  get gateway(): string {
    return this.getAttribute("gateway") ?? "";
  }
  set gateway(v: string) {
    this.setAttribute("gateway", v);
  }

  /** The bearer token (the `token` attribute); null removes it. */
  get token(): string | null {
    return this.getAttribute("token");
  }
  set token(v: string | null) {
    if (v === null || v === undefined) this.removeAttribute("token");
    else this.setAttribute("token", v);
  }

  /**
   * "organizer" shows the moderation controls, when the server says the
   * user is an organizer of the room; anything else is "participant".
   */
  get mode(): ParleyChatMode {
    return this.getAttribute("mode") === "organizer" ? "organizer" : "participant";
  }
  set mode(v: ParleyChatMode) {
    this.setAttribute("mode", v);
  }

  /** True when the organizer's controls are shown: mode="organizer" and the organizer role in the room. */
  get moderating(): boolean {
    return this.mode === "organizer" && this.client_ !== null && this.client_.canModerate(this.room);
  }

  get state(): ParleyChatState {
    return (this.dataset.state as ParleyChatState | undefined) ?? "idle";
  }

  /** True when the composer accepts input. */
  get ready(): boolean {
    return !this.els.input.disabled;
  }

  /**
   * The app's source of fresh tokens, asked on every (re)connection and again
   * when the server refused a token; used instead of the `token` attribute.
   * Setting it after a sign-in error tries again at once.
   */
  get tokenProvider(): TokenProvider | null {
    return this.tokenProvider_;
  }
  set tokenProvider(fn: TokenProvider | null) {
    this.tokenProvider_ = fn;
    if (this.client_?.state === "unauthenticated") this.client_.reconnect();
    else if (this.isConnected && !this.client_) this.queueRestart();
  }

  /** The texts shown (English by default); set any subset to replace them. */
  get strings(): ParleyChatStrings {
    return this.strings_;
  }
  set strings(overrides: Partial<ParleyChatStrings>) {
    this.strings_ = mergeStrings(overrides ?? {});
    this.applyStrings();
    this.render(this.client_?.state ?? "idle", this.lastRetryInMs, this.isConnected);
    this.rows.refresh();
  }

  connectedCallback(): void {
    this.queueRestart();
  }

  disconnectedCallback(): void {
    this.stop();
  }

  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void {
    if (oldValue === newValue) return;
    if (name === "mode") {
      // The same connection: only what is shown changes.
      this.renderAccess();
      this.rows.refresh();
      return;
    }
    if (name === "token" && this.client_) {
      // Read afresh on every (re)connect; after a sign-in error, try it now.
      if (this.client_.state === "unauthenticated") this.client_.reconnect();
      return;
    }
    if (this.isConnected) this.queueRestart();
  }

  /** Sends a message as if typed in the composer; null when it cannot be sent now. */
  send(body: string): Pending | null {
    const c = this.client_;
    if (!c || !this.ready || c.check(this.room, body) !== null) return null;
    return c.send(this.room, body);
  }

  // ---- lifecycle -------------------------------------------------------------

  /** Attributes often arrive right after insertion (frameworks): batch them. */
  private queueRestart(): void {
    if (this.restartQueued) return;
    this.restartQueued = true;
    queueMicrotask(() => {
      this.restartQueued = false;
      if (this.isConnected) this.restart();
    });
  }

  private attributeToken(): string | Promise<string> {
    return this.getToken ? this.getToken() : (this.getAttribute("token") ?? "");
  }

  private restart(): void {
    this.stop();
    const room = this.room;
    this.els.title.textContent = room ? `#${room}` : "";
    const hasToken = this.tokenProvider_ !== null || this.getToken !== null || this.hasAttribute("token");
    if (!room || !hasToken) {
      this.render("idle");
      return;
    }
    const gateway =
      this.getAttribute("gateway") ||
      (typeof location !== "undefined" && location.origin !== "null" ? location.origin : "");
    const format = this.getAttribute("format") === "json" ? "json" : "proto";
    const limit = Number.parseInt(this.getAttribute("history-limit") ?? "", 10);
    const client = new ParleyClient({
      url: gateway,
      tokenProvider: (req) => (this.tokenProvider_ ? this.tokenProvider_(req) : this.attributeToken()),
      format,
      presence: true,
      typing: true,
      ...(limit > 0 ? { historyLimit: limit } : {}),
      ...this.options,
    });
    this.client_ = client;
    this.readMarker = new ReadMarker((seq, rev) => client.markRead(room, seq, rev), this.options.clock);
    this.observer = this.watchRows();
    if (this.observer) this.ownerDocument.addEventListener("visibilitychange", this.onVisibility);
    const on = client.on.bind(client);
    this.unsubscribers = [
      on("state", (e) => {
        this.render(e.state, e.retryInMs);
        this.fire("parley-state", e);
      }),
      on("authenticated", () => {
        this.rows.refresh();
        this.renderAccess();
        this.placeUnread(client.room(room)?.messages() ?? []);
      }),
      on("access", (e) => {
        if (e.room !== room) return;
        this.render(client.state);
        this.rows.refresh();
        this.fire("parley-access", e);
      }),
      on("room-event", (e) => {
        if (e.room !== room) return;
        this.roomEvent(e.action);
        this.fire("parley-room-event", e);
      }),
      on("presence", (e) => {
        if (e.room !== room) return;
        this.showPresence(e.count, e.users);
        this.fire("parley-presence", e);
      }),
      on("typing", (e) => {
        if (e.room !== room) return;
        this.showTyping(e.users);
        this.fire("parley-typing", e);
      }),
      on("history", (e) => {
        if (e.older) this.keepPlace(() => this.showAll(e.messages));
        else {
          this.showAll(e.messages);
          this.scrollToEnd();
        }
        this.els.older.hidden = !e.hasOlder;
        this.historyShown = true;
        if (!e.older) this.placeUnread(e.messages);
        this.render(client.state);
        this.fire("parley-history", e);
      }),
      on("message", (e) => {
        this.show(e.message);
        if (!e.replay && !this.isMine(e.message)) this.announce(e.message);
        this.fire("parley-message", e);
      }),
      on("edit", (e) => {
        this.show(e.message);
        this.fire("parley-edit", e);
      }),
      on("delete", (e) => {
        this.show(e.message);
        this.fire("parley-delete", e);
      }),
      on("pending", (e) => {
        if (e.room !== room) return;
        this.followEnd(true); // one's own message always scrolls into view
        this.rows.addPending(e.pending, client.user?.displayName || this.strings_.me);
        this.els.empty.hidden = true;
      }),
      on("ack", (e) => {
        this.typed.delete(e.pending.clientMsgId);
        this.rows.removePending(e.pending.clientMsgId);
        if (e.message) this.show(client.room(e.room)?.get(e.message.seq) ?? e.message);
        this.fire("parley-ack", e);
      }),
      on("send-error", (e) => {
        this.rows.removePending(e.pending.clientMsgId);
        this.giveBack(e.pending.clientMsgId, e.code, e.detail);
        this.fire("parley-send-error", e);
      }),
      on("error", (e) => {
        // A room that cannot be shown (it does not exist, no permission).
        if (e.room === room && ROOM_ERRORS.has(e.code)) {
          this.roomError = e.code;
          this.roomRule = e.rule ?? null;
          this.render(client.state);
        }
        this.fire("parley-error", e);
      }),
      on("auth-error", (e) => this.fire("parley-auth-error", e)),
    ];
    client.subscribe(room);
    client.start();
    this.render(client.state);
  }

  private stop(): void {
    this.roomError = null;
    this.roomRule = null;
    this.readMarker?.stop();
    this.readMarker = null;
    this.observer?.disconnect();
    this.observer = null;
    this.ownerDocument.removeEventListener("visibilitychange", this.onVisibility);
    this.unreadPlaced = false;
    this.mutedAuthors.clear();
    this.showPresence(0, []);
    this.showTyping([]);
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    if (this.client_) this.client_.close();
    this.client_ = null;
    this.historyShown = false;
    this.typed.clear();
    this.rows.clear();
    this.els.older.hidden = true;
    this.els.empty.hidden = true;
    this.els.announcer.replaceChildren();
    this.showError(null);
    this.render("idle");
  }

  private fire<K extends ParleyChatEventName>(type: K, detail: ParleyChatEventDetail<K>): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  // ---- rendering -------------------------------------------------------------

  private applyStrings(): void {
    const s = this.strings_;
    this.els.older.textContent = s.loadOlder;
    this.els.empty.textContent = s.noMessages;
    this.els.list.setAttribute("aria-label", s.messagesLabel);
    this.els.input.placeholder = s.inputPlaceholder;
    this.els.input.setAttribute("aria-label", s.inputLabel);
    this.els.send.textContent = s.send;
    this.els.moderation.setAttribute("aria-label", s.moderationLabel);
    this.els.modeLabel.textContent = s.roomModeLabel;
    const texts: Record<string, string> = { open: s.modeOpen, announcements: s.modeAnnouncements, closed: s.modeClosed };
    for (const opt of this.els.roomMode.options) opt.textContent = texts[opt.value] ?? opt.value;
    this.els.list.querySelector(":scope > li.unread")?.replaceChildren(s.newMessages);
  }

  private statusText(shown: StatusShown, retryInMs: number | undefined): string {
    const s = this.strings_;
    switch (shown) {
      case "error":
        if (this.roomError === "ROOM_NOT_FOUND") return s.statusRoomNotFound;
        if (this.roomRule === "REMOVED") return s.statusRoomRemoved;
        if (this.roomRule === "MEMBERS_ONLY") return s.statusRoomMembersOnly;
        if (this.roomRule === "NOT_GRANTED") return s.statusRoomNotGranted;
        return s.statusRoomError(this.roomError ?? "");
      case "idle":
        return s.statusIdle;
      case "connecting":
        return s.statusConnecting;
      case "reconnecting":
        return s.statusReconnecting;
      case "catching-up":
        return s.statusCatchingUp;
      case "live":
        return s.statusLive;
      case "unauthenticated":
        return s.statusUnauthenticated;
      case "closed":
        return s.statusClosed;
      case "offline":
        return (
          s.statusOffline +
          (retryInMs !== undefined && retryInMs >= RETRY_COUNTDOWN_MIN_MS
            ? s.retryingIn(Math.round(retryInMs / MS_PER_SECOND))
            : s.reconnectingSoon)
        );
    }
  }

  private render(state: ParleyChatState, retryInMs?: number, host = true): void {
    this.lastRetryInMs = retryInMs;
    const ready =
      state === "live" && this.historyShown && this.client_ !== null && this.client_.isLive(this.room);
    if (host) {
      this.dataset.state = state;
      if (ready) this.dataset.ready = "";
      else delete this.dataset.ready;
      const error = this.roomError ?? (state === "unauthenticated" ? "UNAUTHENTICATED" : null);
      if (error) this.dataset.error = error;
      else delete this.dataset.error;
    }
    if (state === "live") this.wasLive = true;
    else if (state === "idle" || state === "closed") this.wasLive = false;
    const shown: StatusShown = this.roomError
      ? "error"
      : state === "connecting" && this.wasLive
        ? "reconnecting"
        : state;
    const s = this.els.status;
    s.dataset.state = shown;
    s.textContent = this.statusText(shown, retryInMs);
    // The server's rules: a muted user or a read-only room reads but does not write.
    const access = this.client_?.access(this.room) ?? null;
    const refused = access !== null && !access.canPost ? access : null;
    const writable = ready && refused === null;
    this.els.input.disabled = !writable;
    this.els.send.disabled = !writable;
    this.els.form.dataset.disabled = writable ? "false" : "true";
    const notice = ready && refused ? this.cannotPostText(refused.postRule, refused.mutedUntilMs) : null;
    this.els.notice.hidden = notice === null;
    this.els.notice.textContent = notice ?? "";
    if (host) {
      if (refused) this.dataset.postRule = Rule[refused.postRule] ?? String(refused.postRule);
      else delete this.dataset.postRule;
    }
    this.renderAccess(host);
  }

  /** Why the user may not post, in words (rule: the server's Rule). */
  private cannotPostText(rule: Rule, mutedUntilMs: bigint): string {
    const s = this.strings_;
    switch (rule) {
      case Rule.MUTED:
        return mutedUntilMs > 0n
          ? s.cannotPostMutedUntil(
              new Date(Number(mutedUntilMs)).toLocaleTimeString(s.locale, { hour: "2-digit", minute: "2-digit" }),
            )
          : s.cannotPostMuted;
      case Rule.ANNOUNCEMENTS:
        return s.cannotPostAnnouncements;
      case Rule.ROOM_CLOSED:
        return s.cannotPostClosed;
      default:
        return s.cannotPost(Rule[rule] ?? String(rule));
    }
  }

  /** The organizer's controls: shown only when moderating; the switch shows the room's mode. */
  private renderAccess(host = true): void {
    const on = this.moderating;
    this.els.moderation.hidden = !on;
    if (host) {
      if (on) this.dataset.moderating = "";
      else delete this.dataset.moderating;
    }
    const mode = this.client_?.roomInfo(this.room)?.mode ?? RoomMode.UNSPECIFIED;
    const opt = MODE_OPTIONS.find((o) => o.mode === mode);
    if (opt && this.els.roomMode.value !== opt.value) this.els.roomMode.value = opt.value;
    this.els.roomMode.disabled = !opt;
  }

  // ---- live state: presence, typing, room events ------------------------------

  private showPresence(count: number, users: readonly Author[]): void {
    const p = this.els.presence;
    p.hidden = count === 0;
    p.dataset.count = String(count);
    const names = users.slice(0, PRESENCE_NAMES_SHOWN).map((u) => u.displayName || u.id);
    p.textContent = count === 0 ? "" : this.strings_.presence(count, names);
  }

  private showTyping(users: readonly Author[]): void {
    const t = this.els.typing;
    if (users.length > 0) t.dataset.active = "";
    else delete t.dataset.active;
    const names = users.map((u) => u.displayName || u.id);
    t.textContent = users.length === 0 ? "" : this.strings_.typing(names.length > TYPING_NAMES_SHOWN ? [] : names);
  }

  /** A room action, live: what it changes on screen, and a line for screen readers. */
  private roomEvent(a: ModerationAction): void {
    this.noteAction(a);
    const s = this.strings_;
    const actor = a.actor?.displayName || a.actor?.id || s.unknownAuthor;
    this.say(s.roomAction(actor, ActionKind[a.kind] ?? String(a.kind), a.targetUserId));
  }

  /** Who is muted (for the organizer's Unmute buttons), and the controls as the action left them. */
  private noteAction(a: ModerationAction): void {
    if (a.kind === ActionKind.MUTE) this.mutedAuthors.set(a.targetUserId, a.untilMs);
    else if (a.kind === ActionKind.UNMUTE) this.mutedAuthors.delete(a.targetUserId);
    this.renderAccess();
    if (this.moderating && (a.kind === ActionKind.MUTE || a.kind === ActionKind.UNMUTE)) this.rows.refresh();
  }

  private moderationOf(m: Message): { muted: boolean } | null {
    const id = m.author?.id;
    if (!id || !this.moderating || this.isMine(m)) return null;
    const until = this.mutedAuthors.get(id);
    return { muted: until !== undefined && (until === 0n || Number(until) > Date.now()) };
  }

  private async moderate(action: ModerationRequest, authorId: string): Promise<void> {
    const c = this.client_;
    if (!c) return;
    const room = this.room;
    let done: ModerationAction | undefined;
    if (action === "mute-timed") done = await c.mute(room, authorId, { durationMs: DEFAULT_MUTE_MS });
    else if (action === "mute") done = await c.mute(room, authorId);
    else if (action === "unmute") done = await c.unmute(room, authorId);
    else done = await c.removeUser(room, authorId);
    // The room event says the same a moment later (and is read out then);
    // the buttons change now.
    if (done) this.noteAction(done);
  }

  private async changeMode(): Promise<void> {
    const c = this.client_;
    const opt = MODE_OPTIONS.find((o) => o.value === this.els.roomMode.value);
    if (!c || !opt) return;
    const err = this.els.moderationError;
    err.hidden = true;
    this.els.roomMode.disabled = true;
    try {
      await c.setMode(this.room, opt.mode);
    } catch (e) {
      err.textContent = this.failureText(e);
      err.hidden = false;
    } finally {
      this.els.roomMode.disabled = false;
      this.renderAccess();
    }
  }

  // ---- read state -------------------------------------------------------------

  /** The "new messages" divider, once, above the first message of someone else after the last one read. */
  private placeUnread(messages: readonly Message[]): void {
    if (this.unreadPlaced || !this.historyShown) return;
    const access = this.client_?.access(this.room);
    // The user's own messages are never new to them: wait until it is known who that is.
    if (!access || !this.client_?.user) return;
    this.unreadPlaced = true;
    const read = access.lastReadSeq;
    this.readMarker?.known(read);
    if (read === 0n) return; // never read here: everything is new, no divider
    const first = messages.find((m) => m.seq > read && !m.deleted && !this.isMine(m));
    this.rows.setUnreadFrom(first?.seq ?? null);
  }

  /** Marks rows read as they come into view (where the browser can tell). */
  private watchRows(): IntersectionObserver | null {
    if (typeof IntersectionObserver === "undefined") return null;
    return new IntersectionObserver(
      (entries) => {
        if (this.ownerDocument.visibilityState === "hidden") return;
        for (const en of entries) {
          const li = en.target as HTMLElement;
          if (!en.isIntersecting || !li.dataset.seq || !li.dataset.rev) continue;
          this.readMarker?.seen(BigInt(li.dataset.seq), BigInt(li.dataset.rev));
        }
      },
      { root: this.els.log, threshold: 0.5 },
    );
  }

  private isMine(m: Message): boolean {
    const me = this.client_?.user;
    return me !== null && me !== undefined && m.author?.id === me.id;
  }

  private showAll(messages: Message[]): void {
    for (const m of messages) this.rows.upsert(m);
    this.rows.renderDays();
    this.els.empty.hidden = this.rows.size > 0 || this.rows.pendingCount > 0;
  }

  /** One change: rendered now, laid out (days, trimming, scrolling) once per batch. */
  private show(m: Message): void {
    this.followEnd(false);
    this.rows.upsert(m);
    this.els.empty.hidden = true;
  }

  private announce(m: Message): void {
    const s = this.strings_;
    this.say(s.announce(m.author?.displayName || m.author?.id || s.unknownAuthor, m.deleted ? s.deleted : m.body));
  }

  /** One line for the live region. */
  private say(text: string): void {
    const p = this.ownerDocument.createElement("p");
    p.textContent = text;
    const live = this.els.announcer;
    live.append(p);
    while (live.childElementCount > ANNOUNCEMENTS_KEPT) live.firstElementChild?.remove();
  }

  // ---- the composer ------------------------------------------------------------

  private problemText(p: SendProblem | null): string | null {
    if (!p) return null;
    const s = this.strings_;
    if (p.code === "BODY_EMPTY") return s.bodyEmpty;
    return s.bodyTooLong(p.size ?? 0, p.limit ?? 0);
  }

  private failureText(err: unknown): string {
    if (err instanceof HttpError) return this.strings_.actionFailed(err.code, err.message);
    return this.strings_.actionFailed("ERROR", err instanceof Error ? err.message : String(err));
  }

  private showError(text: string | null): void {
    const { error, input } = this.els;
    error.hidden = text === null;
    error.textContent = text ?? "";
    if (text === null) {
      input.removeAttribute("aria-invalid");
      input.removeAttribute("aria-describedby");
    } else {
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", error.id);
    }
  }

  /** While typing: says so as soon as the text is too long (an empty box is no error yet). */
  private validateInput(): void {
    const body = this.els.input.value;
    const p = this.client_ && body.trim() !== "" ? this.client_.check(this.room, body) : null;
    this.showError(this.problemText(p));
  }

  private submit(): void {
    const c = this.client_;
    const body = this.els.input.value;
    if (!c || !this.ready || body.trim() === "") return;
    const problem = this.problemText(c.check(this.room, body));
    if (problem !== null) {
      // Refused here, before it goes out; the text stays to be shortened.
      this.showError(problem);
      this.els.input.focus();
      return;
    }
    this.showError(null);
    // Remembered before it goes: a refusal, now or later, puts the text back.
    const id = newClientMsgId();
    this.typed.set(id, body);
    this.els.input.value = "";
    c.send(this.room, body, id);
    this.els.input.focus();
  }

  /** A send the server refused: its text goes back into the composer, before anything typed since. */
  private giveBack(clientMsgId: string, code: string, detail: string): void {
    const body = this.typed.get(clientMsgId);
    if (body === undefined) return;
    this.typed.delete(clientMsgId);
    const input = this.els.input;
    input.value = input.value === "" ? body : `${body}\n\n${input.value}`;
    this.showError(this.strings_.sendFailed(code, detail));
  }

  // ---- scrolling -------------------------------------------------------------

  private async loadOlder(): Promise<void> {
    const c = this.client_;
    if (!c || this.loadingOlder) return;
    this.loadingOlder = true;
    this.els.older.disabled = true;
    try {
      const more = await c.loadOlder(this.room);
      this.els.older.hidden = !more;
    } catch {
      /* the button stays; the user can try again */
    } finally {
      this.loadingOlder = false;
      this.els.older.disabled = false;
    }
  }

  /** Runs `change` (rows added above) keeping what the reader sees where it was. */
  private keepPlace(change: () => void): void {
    const l = this.els.log;
    const fromEnd = l.scrollHeight - l.scrollTop;
    change();
    l.scrollTop = l.scrollHeight - fromEnd;
  }

  /**
   * Keeps the log scrolled to the end if it was there before this batch of
   * changes (or `force`). Layout is read once per batch, before the first
   * change; after the last one the day separators are placed, rows beyond
   * maxRendered are dropped (only while following the end: a reader scrolled
   * up keeps their place), and the log scrolls once.
   */
  private followEnd(force: boolean): void {
    if (this.follow === null) {
      this.follow = force || this.nearEnd();
      queueMicrotask(() => {
        const follow = this.follow;
        this.follow = null;
        this.rows.renderDays();
        if (!follow) return;
        this.trim();
        this.scrollToEnd();
      });
    } else if (force) {
      this.follow = true;
    }
  }

  private trim(): void {
    const c = this.client_;
    if (!c || this.rows.size <= this.maxRendered) return;
    const dropped = c.trim(this.room, this.maxRendered);
    if (dropped.length === 0) return;
    this.rows.remove(dropped);
    this.rows.renderDays();
    this.els.older.hidden = false;
  }

  private nearEnd(): boolean {
    const l = this.els.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight < FOLLOW_SLACK_PX;
  }

  private scrollToEnd(): void {
    const l = this.els.log;
    l.scrollTop = l.scrollHeight;
  }
}

/** Registers the element (once) under `tag`. */
export function defineParleyChat(tag = "parley-chat"): void {
  if (typeof customElements === "undefined") return;
  if (!customElements.get(tag)) customElements.define(tag, ParleyChatElement);
}

declare global {
  interface HTMLElementTagNameMap {
    "parley-chat": ParleyChatElement;
  }
}
