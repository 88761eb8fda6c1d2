// token-source: where the client's bearer token comes from, and what happens
// when the server refuses it. A static token is used as is; a provider (the
// app's async function) is asked once per connection attempt, so a token
// renewed by the app is picked up on every reconnect, and again when the
// server refused the token it gave (WebSocket close 4401, REST 401). A
// refusal is final (an AuthFailure, a sign-in problem for the app to solve)
// when there is no provider, when the provider fails or hands back the token
// just refused, or when it keeps handing out refused tokens.
import { MAX_TOKEN_REFRESHES } from "./constants.js";

/** Why the client asks for a token. */
export type TokenReason = "connect" | "rejected";

export interface TokenRequest {
  /** "connect": a new connection (renewal); "rejected": the server refused `rejected`. */
  reason: TokenReason;
  /** The token the server refused, with reason "rejected". */
  rejected?: string;
}

/** The app's source of fresh tokens. */
export type TokenProvider = (request: TokenRequest) => string | Promise<string>;

/** Why signing in failed for good. */
export type AuthFailureReason = "rejected" | "provider-failed";

/** Signing in cannot succeed without the app: a new token or a new sign-in. */
export class AuthFailure extends Error {
  readonly reason: AuthFailureReason;
  constructor(reason: AuthFailureReason, detail: string) {
    super(detail);
    this.name = "AuthFailure";
    this.reason = reason;
  }
}

export class TokenSource {
  private readonly fixed: string | undefined;
  private readonly provider: TokenProvider | null;
  private cached: Promise<string> | null = null;
  /** The cached token was fetched and not yet used to open a connection. */
  private fresh = false;
  /** Tokens handed out since one was last accepted. */
  private refreshes = 0;
  private replacing: { rejected: string; next: Promise<string> } | null = null;

  constructor(options: { token?: string | undefined; provider?: TokenProvider | null | undefined }) {
    this.fixed = options.token;
    this.provider = options.provider ?? null;
  }

  /** The token to use now (REST calls): the latest one, fetched if there is none yet. */
  current(): Promise<string> {
    if (this.cached === null) {
      this.cached = this.remember(this.ask({ reason: "connect" }));
      this.fresh = true;
    }
    return this.cached;
  }

  /** The token for a new connection: asks the provider again unless the latest is unused. */
  forConnection(): Promise<string> {
    if (this.cached !== null && this.fresh) {
      this.fresh = false;
      return this.cached;
    }
    this.cached = this.remember(this.ask({ reason: "connect" }));
    this.fresh = false;
    return this.cached;
  }

  /**
   * The server refused `token`. Resolves with a different token to try, or
   * rejects with an AuthFailure. Concurrent refusals of the same token (REST
   * and WebSocket at once) share one question to the provider.
   */
  replace(token: string): Promise<string> {
    if (this.replacing?.rejected === token) return this.replacing.next;
    const next = this.fetchReplacement(token);
    this.replacing = { rejected: token, next };
    const done = (): void => {
      if (this.replacing?.next === next) this.replacing = null;
    };
    next.then(done, done);
    next.catch(() => {});
    return next;
  }

  /** The server accepted a token: the next refusal may ask the provider again. */
  accepted(): void {
    this.refreshes = 0;
  }

  /** Starts over (the app supplied a new token or asked to try again). */
  reset(): void {
    this.refreshes = 0;
    this.cached = null;
    this.fresh = false;
    this.replacing = null;
  }

  /** Keeps a token promise; a failure is reported to whoever awaits it, never as unhandled. */
  private remember(p: Promise<string>): Promise<string> {
    p.catch(() => {});
    return p;
  }

  private async ask(request: TokenRequest): Promise<string> {
    if (!this.provider) return this.fixed ?? "";
    try {
      return await this.provider(request);
    } catch (e) {
      throw new AuthFailure("provider-failed", `token provider failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async fetchReplacement(rejected: string): Promise<string> {
    if (!this.provider) throw new AuthFailure("rejected", "the token was refused (invalid or expired)");
    // A token newer than the refused one is already in hand.
    const latest = this.cached ? await this.cached.catch(() => null) : null;
    if (latest !== null && latest !== rejected) return latest;
    if (this.refreshes >= MAX_TOKEN_REFRESHES) {
      throw new AuthFailure("rejected", "the fresh tokens were refused too");
    }
    this.refreshes += 1;
    const next = this.remember(this.ask({ reason: "rejected", rejected }));
    this.cached = next;
    this.fresh = true;
    const token = await next;
    if (token === rejected) {
      throw new AuthFailure("rejected", "the token provider handed back the refused token");
    }
    return token;
  }
}
