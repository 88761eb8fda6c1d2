// element: <parley-chat room="..." gateway="..." token="...">, a standard
// custom element (shadow DOM, no framework) around one ParleyClient. It shows
// the room's history, then live messages, the connection state, and a
// composer that is enabled only while the history is shown and the
// connection is live. Theming: CSS custom properties (--parley-*) and
// ::part() selectors. Test hooks: host [data-state], [data-ready]; message
// items carry data-seq, data-rev, data-pending, data-deleted, data-edited.
import { type ConnectOptions, type ConnectionState, ParleyClient } from "./client.js";
import { FOLLOW_SLACK_PX, MS_PER_SECOND, RETRY_COUNTDOWN_MIN_MS } from "./constants.js";
import type { Message } from "./gen/parley/v1/message_pb.js";
import type { Pending } from "./outbox.js";

const STYLE = `
:host {
  display: block;
  box-sizing: border-box;
  height: var(--parley-height, 28rem);
  font-family: var(--parley-font, system-ui, -apple-system, "Segoe UI", sans-serif);
  font-size: var(--parley-font-size, 0.95rem);
  color: var(--parley-fg, #1d2330);
  background: var(--parley-bg, #ffffff);
  border: 1px solid var(--parley-border, #d5d9e0);
  border-radius: var(--parley-radius, 8px);
  overflow: hidden;
}
:host([hidden]) { display: none; }
[hidden] { display: none !important; }
.chat { display: flex; flex-direction: column; height: 100%; }
header {
  display: flex; align-items: center; justify-content: space-between; gap: 0.5rem;
  padding: 0.5rem 0.75rem; border-bottom: 1px solid var(--parley-border, #d5d9e0);
}
.title { font-weight: 600; }
.status { font-size: 0.8em; color: var(--parley-muted, #667085); display: inline-flex; align-items: center; gap: 0.35em; }
.status::before {
  content: ""; width: 0.55em; height: 0.55em; border-radius: 50%;
  background: var(--parley-status-color, #98a2b3);
}
.status[data-state="live"] { --parley-status-color: var(--parley-online, #12b76a); }
.status[data-state="offline"], .status[data-state="reconnecting"] { --parley-status-color: var(--parley-offline, #f04438); color: var(--parley-offline, #f04438); }
.status[data-state="catching-up"], .status[data-state="connecting"] { --parley-status-color: var(--parley-warning, #f79009); }
.log { flex: 1; overflow-y: auto; padding: 0.5rem 0.75rem; }
ol { list-style: none; margin: 0; padding: 0; }
li { padding: 0.25rem 0; line-height: 1.35; overflow-wrap: anywhere; }
.author { font-weight: 600; margin-right: 0.4em; }
.time { color: var(--parley-muted, #667085); font-size: 0.75em; margin-right: 0.4em; }
.body { white-space: pre-wrap; }
li[data-mine] .author { color: var(--parley-accent, #3559e0); }
li[data-pending="true"] { opacity: var(--parley-pending-opacity, 0.55); }
li[data-pending="true"] .time::after { content: "sending…"; }
li[data-deleted] .body { font-style: italic; color: var(--parley-muted, #667085); }
.edited { color: var(--parley-muted, #667085); font-size: 0.75em; margin-left: 0.4em; }
.older { display: block; margin: 0 auto 0.5rem; font: inherit; font-size: 0.8em; background: none;
  border: 1px solid var(--parley-border, #d5d9e0); border-radius: var(--parley-radius, 8px); padding: 0.2rem 0.6rem; cursor: pointer; }
.empty { color: var(--parley-muted, #667085); font-size: 0.85em; text-align: center; padding: 1rem 0; }
form { display: flex; gap: 0.5rem; padding: 0.5rem; border-top: 1px solid var(--parley-border, #d5d9e0); }
textarea {
  flex: 1; resize: none; font: inherit; color: inherit; background: var(--parley-input-bg, transparent);
  border: 1px solid var(--parley-border, #d5d9e0); border-radius: var(--parley-radius, 8px); padding: 0.4rem 0.5rem;
}
button.send {
  font: inherit; border: 0; border-radius: var(--parley-radius, 8px); padding: 0 1rem; cursor: pointer;
  background: var(--parley-accent, #3559e0); color: var(--parley-accent-fg, #ffffff);
}
textarea:disabled, button:disabled { opacity: 0.5; cursor: not-allowed; }
`;

const STATUS_TEXT: Record<ConnectionState | "idle" | "reconnecting", string> = {
  idle: "Not connected",
  reconnecting: "Offline — reconnecting…",
  connecting: "Connecting…",
  "catching-up": "Catching up…",
  live: "Connected",
  offline: "Offline",
  unauthenticated: "Sign-in needed",
  closed: "Disconnected",
};

/** Errors after which the room will not be shown, whatever the connection does. */
const ROOM_ERRORS = new Set(["ROOM_NOT_FOUND", "ROOM_INVALID", "PERMISSION_DENIED"]);

const Base: typeof HTMLElement =
  typeof HTMLElement !== "undefined" ? HTMLElement : (class {} as unknown as typeof HTMLElement);

export type ParleyChatState = ConnectionState | "idle";

export class ParleyChatElement extends Base {
  static readonly observedAttributes = ["room", "gateway", "token", "format", "history-limit"];

  /** Supplies a token when the `token` attribute is not used. */
  getToken: (() => string | Promise<string>) | null = null;
  /** Extra client options (timers, WebSocket, fetch...) applied at connect. */
  options: Partial<ConnectOptions> = {};

  private client_: ParleyClient | null = null;
  private unsubscribers: Array<() => void> = [];
  private historyShown = false;
  /** Why the room cannot be shown (an ErrorCode name), if it cannot. */
  private roomError: string | null = null;
  /** Set once live; a later 'connecting' is shown as a reconnect. */
  private wasLive = false;
  private readonly root: ShadowRoot;
  private readonly els: {
    status: HTMLElement;
    title: HTMLElement;
    log: HTMLElement;
    older: HTMLButtonElement;
    list: HTMLOListElement;
    pendingList: HTMLOListElement;
    empty: HTMLElement;
    form: HTMLFormElement;
    input: HTMLTextAreaElement;
    send: HTMLButtonElement;
  };
  private readonly items = new Map<bigint, HTMLLIElement>();
  private readonly pendingItems = new Map<string, HTMLLIElement>();
  private restartQueued = false;
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
    header.append(title, status);
    const log = el("div", "log");
    const older = el("button", "load-older", "older");
    older.type = "button";
    older.textContent = "Load earlier messages";
    older.hidden = true;
    const list = el("ol", "messages");
    list.setAttribute("aria-label", "Messages");
    const pendingList = el("ol", "pending");
    const empty = el("div", "empty");
    empty.textContent = "No messages yet.";
    empty.hidden = true;
    log.append(older, empty, list, pendingList);
    const form = el("form", "composer");
    const input = el("textarea", "input");
    input.rows = 1;
    input.placeholder = "Write a message…";
    input.setAttribute("aria-label", "Message");
    const send = el("button", "send");
    send.type = "submit";
    send.textContent = "Send";
    form.append(input, send);
    chat.append(header, log, form);
    this.root.append(style, chat);
    this.els = { status, title, log, older, list, pendingList, empty, form, input, send };

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
    older.addEventListener("click", () => void this.loadOlder());
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

  get state(): ParleyChatState {
    return (this.dataset.state as ParleyChatState | undefined) ?? "idle";
  }

  /** True when the composer accepts input. */
  get ready(): boolean {
    return !this.els.input.disabled;
  }

  connectedCallback(): void {
    this.queueRestart();
  }

  disconnectedCallback(): void {
    this.stop();
  }

  attributeChangedCallback(name: string, oldValue: string | null, newValue: string | null): void {
    if (oldValue === newValue) return;
    if (name === "token" && this.client_) return; // read afresh on every (re)connect
    if (this.isConnected) this.queueRestart();
  }

  /** Sends a message as if typed in the composer. */
  send(body: string): Pending | null {
    if (!this.client_ || !this.ready || body.trim() === "") return null;
    return this.client_.send(this.room, body);
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

  private restart(): void {
    this.stop();
    const room = this.room;
    this.els.title.textContent = room ? `#${room}` : "";
    const hasToken = this.getToken !== null || this.hasAttribute("token");
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
      getToken: () => (this.getToken ? this.getToken() : (this.getAttribute("token") ?? "")),
      format,
      ...(limit > 0 ? { historyLimit: limit } : {}),
      ...this.options,
    });
    this.client_ = client;
    const on = client.on.bind(client);
    this.unsubscribers = [
      on("state", (e) => {
        this.render(e.state, e.retryInMs);
        this.fire("parley-state", e);
      }),
      on("history", (e) => {
        this.renderAll(e.messages, e.hasOlder);
        this.historyShown = true;
        this.render(client.state);
        this.fire("parley-history", e);
      }),
      on("message", (e) => {
        this.upsert(e.message);
        this.fire("parley-message", e);
      }),
      on("edit", (e) => {
        this.upsert(e.message);
        this.fire("parley-edit", e);
      }),
      on("delete", (e) => {
        this.upsert(e.message);
        this.fire("parley-delete", e);
      }),
      on("pending", (e) => this.addPending(e.pending)),
      on("ack", (e) => {
        this.removePending(e.pending.clientMsgId);
        if (e.message) this.upsert(client.room(e.room)?.get(e.message.seq) ?? e.message);
        this.fire("parley-ack", e);
      }),
      on("send-error", (e) => {
        this.removePending(e.pending.clientMsgId);
        this.fire("parley-send-error", e);
      }),
      on("error", (e) => {
        // A room that cannot be shown (it does not exist, no permission).
        if (e.room === room && ROOM_ERRORS.has(e.code)) {
          this.roomError = e.code;
          this.render(client.state);
        }
        this.fire("parley-error", e);
      }),
    ];
    client.subscribe(room);
    client.start();
    this.render(client.state);
  }

  private stop(): void {
    this.roomError = null;
    for (const u of this.unsubscribers) u();
    this.unsubscribers = [];
    if (this.client_) this.client_.close();
    this.client_ = null;
    this.historyShown = false;
    this.items.clear();
    this.pendingItems.clear();
    this.els.list.replaceChildren();
    this.els.pendingList.replaceChildren();
    this.els.older.hidden = true;
    this.els.empty.hidden = true;
    this.render("idle");
  }

  private fire(type: string, detail: unknown): void {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }

  // ---- rendering -------------------------------------------------------------

  private render(state: ParleyChatState, retryInMs?: number, host = true): void {
    const ready =
      state === "live" && this.historyShown && this.client_ !== null && this.client_.isLive(this.room);
    if (host) {
      this.dataset.state = state;
      if (ready) this.dataset.ready = "";
      else delete this.dataset.ready;
    }
    if (state === "live") this.wasLive = true;
    else if (state === "idle" || state === "closed") this.wasLive = false;
    const s = this.els.status;
    const shown = state === "connecting" && this.wasLive ? "reconnecting" : state;
    s.dataset.state = shown;
    let text = STATUS_TEXT[shown];
    if (state === "offline" && retryInMs !== undefined && retryInMs >= RETRY_COUNTDOWN_MIN_MS) {
      text += ` — retrying in ${Math.round(retryInMs / MS_PER_SECOND)} s`;
    } else if (state === "offline") {
      text += " — reconnecting…";
    }
    if (this.roomError) text = this.roomError === "ROOM_NOT_FOUND" ? "Room not found" : `Error: ${this.roomError}`;
    s.textContent = text;
    if (host) {
      if (this.roomError) this.dataset.error = this.roomError;
      else delete this.dataset.error;
    }
    this.els.input.disabled = !ready;
    this.els.send.disabled = !ready;
    this.els.form.dataset.disabled = ready ? "false" : "true";
  }

  private renderAll(messages: Message[], hasOlder: boolean): void {
    for (const m of messages) this.upsert(m, false);
    this.els.older.hidden = !hasOlder;
    this.scrollToEnd(true);
  }

  private upsert(m: Message, scroll = true): void {
    if (scroll) this.followEnd(false);
    let li = this.items.get(m.seq);
    if (!li) {
      li = this.ownerDocument.createElement("li");
      li.setAttribute("part", "message");
      li.dataset.seq = m.seq.toString();
      li.dataset.pending = "false";
      const author = this.ownerDocument.createElement("span");
      author.className = "author";
      author.setAttribute("part", "author");
      const time = this.ownerDocument.createElement("time");
      time.className = "time";
      time.setAttribute("part", "time");
      const body = this.ownerDocument.createElement("span");
      body.className = "body";
      body.setAttribute("part", "body");
      li.append(author, time, body);
      this.items.set(m.seq, li);
      // Keep DOM order equal to seq order: insert before the first later
      // message already rendered (a page of older ones is rendered in a batch).
      const state = this.client_?.room(this.room);
      let after = state?.successor(m.seq) ?? null;
      while (after !== null && !this.items.has(after)) after = state?.successor(after) ?? null;
      const next = after !== null ? (this.items.get(after) ?? null) : null;
      this.els.list.insertBefore(li, next);
    }
    this.fill(li, m);
    this.els.empty.hidden = this.items.size > 0 || this.pendingItems.size > 0;
  }

  private fill(li: HTMLLIElement, m: Message): void {
    li.dataset.rev = m.rev.toString();
    li.dataset.authorId = m.author?.id ?? "";
    li.dataset.clientMsgId = m.clientMsgId;
    if (this.client_?.user && m.author?.id === this.client_.user.id) li.dataset.mine = "";
    const [author, time, body] = li.children as unknown as [HTMLElement, HTMLTimeElement, HTMLElement];
    author.textContent = m.author?.displayName || m.author?.id || "unknown";
    const at = new Date(Number(m.createdAtMs));
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (m.deleted) {
      li.dataset.deleted = "";
      body.textContent = "message deleted";
    } else {
      delete li.dataset.deleted;
      body.textContent = m.body;
    }
    li.querySelector(".edited")?.remove();
    if (m.editedAtMs > 0n && !m.deleted) {
      li.dataset.edited = "";
      const mark = this.ownerDocument.createElement("span");
      mark.className = "edited";
      mark.setAttribute("part", "edited");
      mark.textContent = "(edited)";
      li.append(mark);
    } else {
      delete li.dataset.edited;
    }
  }

  private addPending(p: Pending): void {
    if (p.room !== this.room || this.pendingItems.has(p.clientMsgId)) return;
    this.followEnd(true); // one's own message always scrolls into view
    const li = this.ownerDocument.createElement("li");
    li.setAttribute("part", "message pending");
    li.dataset.pending = "true";
    li.dataset.clientMsgId = p.clientMsgId;
    li.dataset.mine = "";
    const author = this.ownerDocument.createElement("span");
    author.className = "author";
    author.setAttribute("part", "author");
    author.textContent = this.client_?.user?.displayName || "me";
    const time = this.ownerDocument.createElement("span");
    time.className = "time";
    time.setAttribute("part", "time");
    const body = this.ownerDocument.createElement("span");
    body.className = "body";
    body.setAttribute("part", "body");
    body.textContent = p.body;
    li.append(author, time, body);
    this.pendingItems.set(p.clientMsgId, li);
    this.els.pendingList.append(li);
    this.els.empty.hidden = true;
  }

  private removePending(clientMsgId: string): void {
    const li = this.pendingItems.get(clientMsgId);
    if (!li) return;
    li.remove();
    this.pendingItems.delete(clientMsgId);
  }

  private submit(): void {
    const body = this.els.input.value;
    if (this.send(body)) {
      this.els.input.value = "";
      this.els.input.focus();
    }
  }

  private async loadOlder(): Promise<void> {
    const c = this.client_;
    if (!c) return;
    this.els.older.disabled = true;
    try {
      const more = await c.loadOlder(this.room);
      this.els.older.hidden = !more;
    } catch {
      /* shown again below; the user can retry */
    } finally {
      this.els.older.disabled = false;
    }
  }

  /**
   * Keeps the log scrolled to the end if it was there before this batch of
   * changes (or `force`). Layout is read once per batch, before the first
   * change, and the scroll happens once after the last: a catch-up of
   * hundreds of messages does not force a layout per message.
   */
  private followEnd(force: boolean): void {
    if (this.follow === null) {
      this.follow = force || this.nearEnd();
      queueMicrotask(() => {
        if (this.follow) this.scrollToEnd(true);
        this.follow = null;
      });
    } else if (force) {
      this.follow = true;
    }
  }

  private nearEnd(): boolean {
    const l = this.els.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight < FOLLOW_SLACK_PX;
  }

  private scrollToEnd(force: boolean): void {
    if (!force) return;
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
