// typing: who is typing in one room, as the server reported it. Each
// `typing{room, user}` frame shows its user for TYPING_SHOWN_MS; a user who
// keeps typing sends again before that runs out. Nothing is stored. One
// timer per tracker, set for the next expiry.
import { type Clock, type TimerHandle, systemClock } from "./clock.js";
import { TYPING_SHOWN_MS } from "./constants.js";
import type { Author } from "./gen/parley/v1/message_pb.js";

export class TypingTracker {
  private readonly clock: Clock;
  private readonly shownMs: number;
  private readonly onChange: (users: Author[]) => void;
  private readonly until = new Map<string, { user: Author; until: number }>();
  private timer: TimerHandle | undefined;

  constructor(onChange: (users: Author[]) => void, clock: Clock = systemClock, shownMs = TYPING_SHOWN_MS) {
    this.onChange = onChange;
    this.clock = clock;
    this.shownMs = shownMs;
  }

  /** Who is typing now, in the order they started. */
  users(): Author[] {
    return [...this.until.values()].map((e) => e.user);
  }

  /** `user` typed just now. */
  typed(user: Author): void {
    const known = this.until.has(user.id);
    this.until.set(user.id, { user, until: this.clock.now() + this.shownMs });
    if (!known) this.onChange(this.users());
    this.schedule();
  }

  /** `userId` is no longer typing (their message arrived). */
  stopped(userId: string): void {
    if (this.until.delete(userId)) {
      this.onChange(this.users());
      this.schedule();
    }
  }

  clear(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.until.size === 0) return;
    this.until.clear();
    this.onChange([]);
  }

  private schedule(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    let next = Number.POSITIVE_INFINITY;
    for (const e of this.until.values()) next = Math.min(next, e.until);
    if (next === Number.POSITIVE_INFINITY) return;
    this.timer = this.clock.setTimeout(() => this.expire(), Math.max(0, next - this.clock.now()));
  }

  private expire(): void {
    this.timer = undefined;
    const now = this.clock.now();
    let changed = false;
    for (const [id, e] of this.until) {
      if (e.until <= now) {
        this.until.delete(id);
        changed = true;
      }
    }
    if (changed) this.onChange(this.users());
    this.schedule();
  }
}
