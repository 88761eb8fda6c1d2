// constants: every number the package's behaviour depends on, named once.
// WebSocket close codes mirror the gateway's (gateway/gw.h, GW_CLOSE_*;
// the table is in docs/gateway.md); defaults that match a server setting say
// which flag they mirror.

// ---- WebSocket close codes ----------------------------------------------------

/** Normal closure: the client closed on purpose (close(), element removed). */
export const CLOSE_NORMAL = 1000;
/** GW_CLOSE_GOING_AWAY: the gateway is shutting down. */
export const CLOSE_GOING_AWAY = 1001;
/** Protocol error: the server picked a subprotocol the client did not offer. */
export const CLOSE_PROTOCOL_ERROR = 1002;
/** GW_CLOSE_BAD_UTF8: invalid data; the client also uses it for a frame it cannot decode. */
export const CLOSE_BAD_UTF8 = 1007;
/** GW_CLOSE_TOO_BIG: a message over the gateway's --max-frame. */
export const CLOSE_TOO_BIG = 1009;
/**
 * The client's own code when it gives a connection up (heartbeat or connect
 * timeout, the browser went offline, a failed catch-up, a fatal error frame).
 */
export const CLOSE_CLIENT_GAVE_UP = 4000;
/** GW_CLOSE_UNAUTH: no, invalid or expired token. Retrying with the same token is useless. */
export const CLOSE_UNAUTH = 4401;
/**
 * GW_CLOSE_TOKEN_EXPIRED: the token expired (at authenticate, or the session
 * outlived it). A fresh token is needed; the same one will never do again.
 */
export const CLOSE_TOKEN_EXPIRED = 4402;
/** GW_CLOSE_RATE: the client sent faster than the gateway's token bucket allows. */
export const CLOSE_RATE = 4429;
/** GW_CLOSE_UPSTREAM: the core behind the gateway is unreachable. */
export const CLOSE_UPSTREAM = 4503;
/** GW_CLOSE_SLOW: the client did not read fast enough (slow consumer). */
export const CLOSE_SLOW = 4508;

/** Close codes a script may send (browsers refuse others). */
export const SCRIPT_CLOSE_MIN = 3000;
export const SCRIPT_CLOSE_MAX = 4999;

// ---- connection defaults ----------------------------------------------------

/** Messages in a room's first history page, and in each older page. */
export const DEFAULT_HISTORY_LIMIT = 50;
/** Ping period; a silent link is declared dead within interval + timeout. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5000;
/** How long after a ping the link may stay silent. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 5000;
/** Open + authenticate must finish within this time. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 8000;
/** A REST call with no answer in this time is aborted. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Changes per REST page while catching up after a loss. */
export const CATCH_UP_PAGE_SIZE = 500;

// ---- limits (used until the server states its own) ---------------------------

/** The gateway's --max-frame default; Authenticated.limits.max_frame_bytes replaces it. */
export const DEFAULT_MAX_FRAME_BYTES = 65_536;
/** The gateway's --rate default (frames per second); Authenticated.limits.frame_rate replaces it. */
export const DEFAULT_FRAME_RATE = 20;
/** The gateway's --burst default; Authenticated.limits.frame_burst replaces it. */
export const DEFAULT_FRAME_BURST = 40;
/**
 * The client paces itself a little below the server's bucket, so frames that
 * arrive bunched by the network still find a token there.
 */
export const PACING_RATE_FACTOR = 0.9;
export const PACING_BURST_MARGIN = 2;
/** After a 4429 close, wait at least this long (and at least until a full bucket refilled). */
export const RATE_LIMITED_MIN_DELAY_MS = 1000;

// ---- retries -------------------------------------------------------------------

/** Backoff: ceiling of the first jittered delay, growth per attempt, largest delay. */
export const DEFAULT_BACKOFF_BASE_MS = 500;
export const DEFAULT_BACKOFF_FACTOR = 2;
export const DEFAULT_BACKOFF_MAX_MS = 30_000;
/** Backoff exponents above this cannot matter (the cap is reached long before); keeps the power finite. */
export const BACKOFF_MAX_EXPONENT = 64;
/** A send refused for a transient reason is tried again after at least this long... */
export const SEND_RETRY_MIN_DELAY_MS = 1000;
/** ...and at most the backoff ceiling of this many attempts. */
export const SEND_RETRY_MAX_STEP = 6;
/** Consecutive refusals of fresh tokens after which the client stops asking and waits for the app. */
export const MAX_TOKEN_REFRESHES = 2;

// ---- HTTP ---------------------------------------------------------------------------

export const HTTP_UNAUTHORIZED = 401;
export const HTTP_TIMEOUT = 408;
export const HTTP_TOO_MANY_REQUESTS = 429;
export const HTTP_SERVER_ERROR = 500;
/** How much of a non-JSON error body is kept in the error's detail. */
export const HTTP_ERROR_DETAIL_CHARS = 200;

// ---- the element -------------------------------------------------------------------

/** The log follows new messages when the reader is within this many pixels of its end. */
export const FOLLOW_SLACK_PX = 48;
/** Older pages load by themselves when the reader scrolls this close to the top. */
export const LOAD_OLDER_TRIGGER_PX = 24;
/** Message rows kept in the DOM while following the end; older rows come back by scrolling. */
export const DEFAULT_MAX_RENDERED = 500;
/** Below this the status says "reconnecting…" instead of a countdown. */
export const RETRY_COUNTDOWN_MIN_MS = 1000;
export const MS_PER_SECOND = 1000;

// ---- rooms: moderation, presence, typing, read state -----------------------------

/** The core passes on at most one typing frame per user and room in this time; the client sends no more often. */
export const TYPING_SEND_INTERVAL_MS = 2000;
/** Someone is shown typing this long after their last typing frame (they repeat every TYPING_SEND_INTERVAL_MS). */
export const TYPING_SHOWN_MS = 5000;
/** The organizer's "mute for a while": 15 minutes. */
export const DEFAULT_MUTE_MS = 15 * 60 * 1000;
/** Messages seen on screen are marked read after the reader rested this long (one REST call per pause). */
export const MARK_READ_DEBOUNCE_MS = 800;
/** Names shown beside the presence count; the rest are counted. */
export const PRESENCE_NAMES_SHOWN = 3;
/** Names shown in the typing line; more are said as "several people". */
export const TYPING_NAMES_SHOWN = 2;
/** The longest delay a timer takes (2^31 - 1 ms, about 24.8 days); a longer one would fire at once. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;
