// backoff: how long to wait before the next reconnection attempt. The first
// retry after a loss is immediate; later ones wait an exponentially growing,
// fully jittered delay (a uniform draw in [0, min(cap, base * factor^(n-1))]),
// so a crowd of clients cut at once does not come back in lock step.
import {
  BACKOFF_MAX_EXPONENT,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_BACKOFF_FACTOR,
  DEFAULT_BACKOFF_MAX_MS,
} from "./constants.js";

export interface BackoffOptions {
  /** Ceiling of the first jittered delay (the second retry). Default 500 ms. */
  baseMs?: number;
  /** Growth per attempt. Default 2. */
  factor?: number;
  /** Largest delay ever returned. Default 30 000 ms. */
  maxMs?: number;
  /** Uniform random number in [0, 1). Default Math.random. */
  random?: () => number;
}

export class Backoff {
  readonly baseMs: number;
  readonly factor: number;
  readonly maxMs: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.factor = options.factor ?? DEFAULT_BACKOFF_FACTOR;
    this.maxMs = options.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
    this.random = options.random ?? Math.random;
    if (!(this.baseMs > 0) || !(this.factor >= 1) || !(this.maxMs >= 0)) {
      throw new RangeError("backoff: baseMs > 0, factor >= 1 and maxMs >= 0 are required");
    }
  }

  /** Attempts made since the last {@link reset}. */
  get attempts(): number {
    return this.attempt;
  }

  /** The upper bound of the delay for retry number `n` (0-based). */
  ceiling(n: number): number {
    if (n <= 0) return 0;
    // Stop growing once past the cap so the power never overflows.
    const exp = Math.min(n - 1, BACKOFF_MAX_EXPONENT);
    return Math.min(this.maxMs, this.baseMs * this.factor ** exp);
  }

  /** The delay before the next attempt, in ms; advances the attempt counter. */
  next(): number {
    const ceiling = this.ceiling(this.attempt++);
    if (ceiling === 0) return 0;
    const r = Math.min(Math.max(this.random(), 0), 1);
    return Math.min(ceiling, Math.floor(r * ceiling));
  }

  /** Call after a connection succeeded: the next loss retries at once. */
  reset(): void {
    this.attempt = 0;
  }
}
