// read-marker: turns "the reader saw message seq" into few Rooms.MarkRead
// calls. Messages seen while the reader scrolls are collected, and once they
// rest for MARK_READ_DEBOUNCE_MS the newest one seen is saved, once; a seq
// at or below what is already read (the server's word, or a save made here)
// is never sent again. A failed save is forgotten, so the next sight tries
// again.
import { type Clock, type TimerHandle, systemClock } from "./clock.js";
import { MARK_READ_DEBOUNCE_MS } from "./constants.js";

export class ReadMarker {
  private readonly save: (seq: bigint, rev: bigint) => Promise<unknown>;
  private readonly clock: Clock;
  private readonly debounceMs: number;
  private read = 0n;
  private newest: { seq: bigint; rev: bigint } | null = null;
  private timer: TimerHandle | undefined;

  constructor(save: (seq: bigint, rev: bigint) => Promise<unknown>, clock: Clock = systemClock, debounceMs = MARK_READ_DEBOUNCE_MS) {
    this.save = save;
    this.clock = clock;
    this.debounceMs = debounceMs;
  }

  /** The seq read up to, as far as this marker knows. */
  get readSeq(): bigint {
    return this.read;
  }

  /** The server says the user read up to `seq`. */
  known(seq: bigint): void {
    if (seq > this.read) this.read = seq;
  }

  /** The reader saw message `seq` (at rev `rev`). */
  seen(seq: bigint, rev: bigint): void {
    if (seq <= this.read || (this.newest !== null && seq <= this.newest.seq)) return;
    this.newest = { seq, rev };
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(() => void this.flush(), this.debounceMs);
  }

  /** Saves the newest message seen now (without waiting). */
  async flush(): Promise<void> {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const n = this.newest;
    this.newest = null;
    if (!n || n.seq <= this.read) return;
    const before = this.read;
    this.read = n.seq;
    try {
      await this.save(n.seq, n.rev);
    } catch {
      if (this.read === n.seq) this.read = before;
    }
  }

  stop(): void {
    this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.newest = null;
  }
}
