// pacer: keeps the frames the client sends under the gateway's token bucket
// (--rate frames per second, --burst at most; every frame counts: ping,
// subscribe, publish), so a burst of sends waits a moment instead of getting
// the connection closed with 4429. The client's bucket mirrors the server's
// (full when the connection opens, refilled continuously), a little smaller
// and slower so frames the network bunches together still find a token.
// Control frames (authenticate, ping, subscribe) go ahead of queued
// publishes: a long outbox must not starve the heartbeat.
import { type Clock, type TimerHandle, systemClock } from "./clock.js";
import { MS_PER_SECOND, PACING_BURST_MARGIN, PACING_RATE_FACTOR } from "./constants.js";

export interface PacerOptions {
  /** The server's refill rate, frames per second. */
  rate: number;
  /** The server's bucket size. */
  burst: number;
  clock?: Clock;
}

/** Which queue a frame waits in: control frames first. */
export type FramePriority = "control" | "publish";

export class Pacer {
  private rate: number;
  private capacity: number;
  private tokens: number;
  private last: number;
  private readonly clock: Clock;
  private readonly control: Array<() => void> = [];
  private readonly publishes: Array<() => void> = [];
  private timer: TimerHandle | undefined;
  private stopped = false;

  constructor(options: PacerOptions) {
    this.clock = options.clock ?? systemClock;
    this.rate = 0;
    this.capacity = 0;
    this.setLimits(options.rate, options.burst);
    this.tokens = this.capacity;
    this.last = this.clock.now();
  }

  /** Frames waiting for a token. */
  get queued(): number {
    return this.control.length + this.publishes.length;
  }

  /**
   * Adopts the limits the server stated. The tokens already spent stay spent:
   * the server's bucket has been counting since the connection opened.
   */
  setLimits(rate: number, burst: number): void {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError("pacer: rate > 0 and burst >= 1 are required");
    this.refill();
    this.rate = rate * PACING_RATE_FACTOR;
    this.capacity = Math.max(1, burst - PACING_BURST_MARGIN);
    if (this.tokens > this.capacity) this.tokens = this.capacity;
    this.drain();
  }

  /** Runs `send` now if a token is free and nothing waits before it, else when one is. */
  submit(send: () => void, priority: FramePriority): void {
    if (this.stopped) return;
    (priority === "control" ? this.control : this.publishes).push(send);
    this.drain();
  }

  /** Drops every waiting frame (the connection is gone). */
  stop(): void {
    this.stopped = true;
    this.control.length = 0;
    this.publishes.length = 0;
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / MS_PER_SECOND) * this.rate);
    this.last = now;
  }

  private drain(): void {
    if (this.stopped || this.timer !== undefined) return;
    this.refill();
    while (this.tokens >= 1) {
      const next = this.control.shift() ?? this.publishes.shift();
      if (!next) return;
      this.tokens -= 1;
      next();
      if (this.stopped) return;
    }
    if (this.queued === 0) return;
    const wait = Math.ceil(((1 - this.tokens) / this.rate) * MS_PER_SECOND);
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, wait);
  }
}
