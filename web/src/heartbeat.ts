// heartbeat: notices a broken connection long before TCP gives up. While a
// connection is up it sends an application-level ping every `intervalMs` and
// declares the link dead when nothing (no pong, no other frame) came back
// within `timeoutMs` of a ping. A black-holed link is therefore detected at
// most intervalMs + timeoutMs after it went silent.
//
// Invariant: a deadline is armed exactly while running with a ping
// unanswered (awaiting != 0); stop() and the answering pong clear it.
import { DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_HEARTBEAT_TIMEOUT_MS } from "./constants.js";
import { type Clock, type TimerHandle, systemClock } from "./clock.js";

export interface HeartbeatOptions {
  /** Sends one ping carrying `nonce`. */
  sendPing(nonce: bigint): void;
  /** Called once when the link is considered broken. */
  onTimeout(): void;
  intervalMs?: number;
  timeoutMs?: number;
  clock?: Clock;
}

export class Heartbeat {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly opts: HeartbeatOptions;
  private nonce = 0n;
  /** Nonce of the oldest ping not yet answered, 0n when none. */
  private awaiting = 0n;
  private lastHeard = 0;
  private pingTimer: TimerHandle | undefined;
  private deadline: TimerHandle | undefined;
  private running = false;

  constructor(options: HeartbeatOptions) {
    this.opts = options;
    this.intervalMs = options.intervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_HEARTBEAT_TIMEOUT_MS;
    this.clock = options.clock ?? systemClock;
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Starts pinging: the first ping goes out at once. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastHeard = this.clock.now();
    this.ping();
  }

  /** Stops pinging; no timer is left behind. */
  stop(): void {
    this.running = false;
    this.awaiting = 0n;
    this.clock.clearTimeout(this.pingTimer);
    this.clock.clearTimeout(this.deadline);
    this.pingTimer = undefined;
    this.deadline = undefined;
  }

  /**
   * A pong arrived. An answer to the oldest unanswered ping or a later one
   * (they come in order) means the link works: no deadline until the next
   * ping, however quiet the link is meanwhile.
   */
  pong(nonce: bigint): void {
    this.heard();
    if (this.awaiting === 0n || nonce < this.awaiting) return;
    this.awaiting = 0n;
    this.clock.clearTimeout(this.deadline);
    this.deadline = undefined;
  }

  /** Any frame arrived: the link carries data, whatever the pongs do. */
  heard(): void {
    this.lastHeard = this.clock.now();
  }

  /** Runs only while running: start() calls it, and stop() clears its timer. */
  private ping(): void {
    this.nonce += 1n;
    const first = this.awaiting === 0n;
    if (first) this.awaiting = this.nonce;
    this.opts.sendPing(this.nonce);
    if (!this.running) return; // sendPing stopped us
    // The deadline runs from the oldest unanswered ping.
    if (first) this.arm(this.timeoutMs);
    this.pingTimer = this.clock.setTimeout(() => this.ping(), this.intervalMs);
  }

  private arm(ms: number): void {
    this.deadline = this.clock.setTimeout(() => this.expire(), ms);
  }

  private expire(): void {
    this.deadline = undefined;
    // Frames kept arriving (a long replay can queue a pong behind it): wait
    // until the link has been silent for a whole timeout.
    const silent = this.clock.now() - this.lastHeard;
    if (silent < this.timeoutMs) {
      this.arm(this.timeoutMs - silent);
      return;
    }
    this.stop();
    this.opts.onTimeout();
  }
}
