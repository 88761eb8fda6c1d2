// history: the gateway's REST view of stored messages. Loads the newest page
// of a room, scrolls back by seq, and catches up on every change after a rev
// (paging until the server has nothing more), all with the bearer token.
import {
  CATCH_UP_PAGE_SIZE,
  DEFAULT_HISTORY_LIMIT,
  DEFAULT_REQUEST_TIMEOUT_MS,
  HTTP_ERROR_DETAIL_CHARS,
  HTTP_SERVER_ERROR,
  HTTP_TIMEOUT,
  HTTP_TOO_MANY_REQUESTS,
} from "./constants.js";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { type Message, MessageSchema, type Room } from "./gen/parley/v1/message_pb.js";
import {
  type ListMessagesResponse,
  ListMessagesResponseSchema,
} from "./gen/parley/v1/history_pb.js";

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface HistoryOptions {
  /**
   * The gateway's HTTP base URL, e.g. "http://127.0.0.1:7480" or, behind a
   * path prefix, "https://example.org/chat/"; routes are resolved under it.
   */
  baseUrl: string;
  getToken: () => string | Promise<string>;
  fetch?: FetchLike;
  /** Abort a request that got no answer in this time. Default 10 000 ms. */
  timeoutMs?: number;
}

export interface ListOptions {
  afterRev?: bigint;
  beforeSeq?: bigint;
  limit?: number;
}

/** The gateway's answer to a page whose origin is not in its --origin list. */
export const ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED";

/** A refused or failed REST call. `code` is the parley ErrorCode name. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  /** With PERMISSION_DENIED: the access rule that refused it (a Rule name such as "MUTED"), else "". */
  readonly rule: string;
  constructor(status: number, code: string, detail: string, rule = "") {
    super(`HTTP ${status} ${code}${rule ? ` (rule ${rule})` : ""}${detail ? `: ${detail}` : ""}`);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.rule = rule;
  }
  /** Worth retrying later: network trouble, rate limit or server side. */
  get transient(): boolean {
    return (
      this.status === 0 ||
      this.status === HTTP_TIMEOUT ||
      this.status === HTTP_TOO_MANY_REQUESTS ||
      this.status >= HTTP_SERVER_ERROR
    );
  }
}

export interface CatchUpResult {
  messages: Message[];
  /** Every change up to this rev is in `messages` (or older than asked). */
  headRev: bigint;
  /** The room as the last page described it (counters, limits). */
  room?: Room;
}

function messagePath(room: string, seq: bigint): string {
  return `v1/rooms/${encodeURIComponent(room)}/messages/${seq.toString()}`;
}

export class HistoryClient {
  private readonly opts: HistoryOptions;
  private readonly timeoutMs: number;

  /** baseUrl ending in "/", so "v1/..." resolves under its path. */
  private readonly base: string;

  constructor(options: HistoryOptions) {
    this.opts = options;
    this.base = options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  /** GET /v1/rooms/{room}/messages with at most one cursor. */
  async list(room: string, options: ListOptions = {}): Promise<ListMessagesResponse> {
    const q = new URLSearchParams();
    if (options.afterRev !== undefined) q.set("after", options.afterRev.toString());
    if (options.beforeSeq !== undefined) q.set("before", options.beforeSeq.toString());
    if (options.limit !== undefined) q.set("limit", String(options.limit));
    const qs = q.toString();
    const path = `v1/rooms/${encodeURIComponent(room)}/messages${qs ? `?${qs}` : ""}`;
    const json = await this.request("GET", path);
    return fromJson(ListMessagesResponseSchema, json, { ignoreUnknownFields: true });
  }

  /** PATCH /v1/rooms/{room}/messages/{seq}: the edited message (author or organizer). */
  async edit(room: string, seq: bigint, body: string): Promise<Message> {
    const json = await this.request("PATCH", messagePath(room, seq), JSON.stringify({ body }));
    return fromJson(MessageSchema, json, { ignoreUnknownFields: true });
  }

  /** DELETE /v1/rooms/{room}/messages/{seq}: the tombstone (author or organizer). */
  async remove(room: string, seq: bigint): Promise<Message> {
    const json = await this.request("DELETE", messagePath(room, seq));
    return fromJson(MessageSchema, json, { ignoreUnknownFields: true });
  }

  /** The newest `limit` messages with the room's counters. */
  latest(room: string, limit = DEFAULT_HISTORY_LIMIT): Promise<ListMessagesResponse> {
    return this.list(room, { limit });
  }

  /** One page of older messages, before `beforeSeq`. */
  older(room: string, beforeSeq: bigint, limit = DEFAULT_HISTORY_LIMIT): Promise<ListMessagesResponse> {
    return this.list(room, { beforeSeq, limit });
  }

  /**
   * Every message changed after `afterRev`, in rev order, following pages
   * until the server reports no more.
   */
  async catchUp(room: string, afterRev: bigint, pageSize = CATCH_UP_PAGE_SIZE): Promise<CatchUpResult> {
    const messages: Message[] = [];
    let cursor = afterRev;
    for (;;) {
      const page = await this.list(room, { afterRev: cursor, limit: pageSize });
      messages.push(...page.messages);
      let last = cursor;
      for (const m of page.messages) if (m.rev > last) last = m.rev;
      const about = page.room ? { room: page.room } : {};
      if (!page.hasMore) {
        // The last page was read in one go: every change up to the room's
        // head at that moment is in hand.
        const head = page.room?.headRev ?? last;
        return { messages, headRev: head > last ? head : last, ...about };
      }
      // A page claiming more but making no progress: stop, claiming only
      // what was seen (the subscription replays the rest).
      if (last === cursor) return { messages, headRev: last, ...about };
      cursor = last;
    }
  }

  /**
   * One call to the gateway's REST API (`path` relative to the base, e.g.
   * "v1/rooms/lobby"), with the bearer token; the JSON answer, or an
   * HttpError with the server's code, detail and rule.
   */
  async request(method: "GET" | "POST" | "PATCH" | "DELETE", path: string, body?: string): Promise<JsonValue> {
    const f = this.opts.fetch ?? (globalThis.fetch as FetchLike | undefined);
    if (!f) throw new Error("parley: no fetch implementation available");
    const token = await this.opts.getToken();
    const url = new URL(path, this.base).toString();
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.timeoutMs);
    let res: Response;
    let text: string;
    try {
      const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: "application/json" };
      if (body !== undefined) headers["content-type"] = "application/json";
      res = await f(url, {
        method,
        headers,
        cache: "no-store",
        ...(body !== undefined ? { body } : {}),
        signal: ctl.signal,
      });
      // The body can stall on a dead link as well as the headers.
      text = await res.text();
    } catch (e) {
      clearTimeout(timer);
      const refused = ctl.signal.aborted ? null : await originRefusal(f, url, this.timeoutMs);
      throw refused ?? new HttpError(0, "NETWORK", e instanceof Error ? e.message : String(e));
    } finally {
      clearTimeout(timer);
    }
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      answer = null; // empty or not JSON
    }
    if (!res.ok) {
      const b = (answer ?? {}) as { code?: unknown; detail?: unknown; rule?: unknown };
      throw new HttpError(
        res.status,
        typeof b.code === "string" ? b.code : "HTTP_ERROR",
        typeof b.detail === "string" ? b.detail : text.slice(0, HTTP_ERROR_DETAIL_CHARS),
        typeof b.rule === "string" ? b.rule : "",
      );
    }
    if (answer === null || typeof answer !== "object") {
      throw new HttpError(res.status, "MALFORMED", "response is not a JSON object");
    }
    return answer as JsonValue;
  }
}

/**
 * Why a request failed without an answer, if the gateway refused this page's
 * origin. A browser hides a CORS refusal (fetch only rejects), so the same
 * URL is asked again as a simple request (no credentials, no preflight):
 * the gateway answers a disallowed origin with a readable 403
 * ORIGIN_NOT_ALLOWED. Anything else (no answer, another status) is left to
 * the caller as a network failure.
 */
async function originRefusal(f: FetchLike, url: string, timeoutMs: number): Promise<HttpError | null> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await f(url, { method: "GET", cache: "no-store", signal: ctl.signal });
    if (res.status !== 403) return null;
    const b = (await res.json()) as { code?: unknown; detail?: unknown };
    return b.code === ORIGIN_NOT_ALLOWED ? new HttpError(403, ORIGIN_NOT_ALLOWED, String(b.detail ?? "")) : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}
