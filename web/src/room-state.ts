// room-state: what one room looks like to this client. Messages are kept by
// seq and listed in seq order. Every change (created, edited, deleted) carries
// the rev of the message's latest change, and a change is applied only when
// its rev is newer than the one the message already has, so replays, repeats
// and out-of-order copies never duplicate or roll back anything and any two
// clients that saw the same changes converge to the same list.
//
// Separately it tracks `syncedRev`: the rev up to which this client has seen
// *every* change of the room, the point a reconnect resumes from. It only
// advances through complete sources (a history page's room.headRev, the
// ordered subscription stream, Subscribed{headRev}); an ack for our own
// message carries a rev too but says nothing about the revs before it.
import type { Message } from "./gen/parley/v1/message_pb.js";

export type ChangeKind = "created" | "edited" | "deleted";

/** What applying a message changed; `previous` is the state it replaced, when known. */
export type Change =
  | { kind: "created"; message: Message }
  | { kind: "edited"; message: Message; previous: Message }
  | { kind: "deleted"; message: Message; previous?: Message };

export class RoomState {
  readonly name: string;
  private readonly bySeq = new Map<bigint, Message>();
  /** Seqs in ascending order (kept sorted on insert). */
  private readonly order: bigint[] = [];
  private synced = 0n;
  /**
   * Lowest seq of the window this client holds; changes to older messages are
   * not shown (scrolling back loads them). 0: no history page yet, so every
   * message is taken.
   */
  private windowStart = 0n;
  private more = false;

  constructor(name: string) {
    this.name = name;
  }

  /** Every change with rev <= syncedRev has been applied. */
  get syncedRev(): bigint {
    return this.synced;
  }

  /** True once a history page was loaded. */
  get loaded(): boolean {
    return this.windowStart > 0n;
  }

  /** Older messages exist before the first loaded one. */
  get hasOlder(): boolean {
    return this.more;
  }

  get size(): number {
    return this.order.length;
  }

  get(seq: bigint): Message | undefined {
    return this.bySeq.get(seq);
  }

  /** Messages ordered by seq (tombstones included, flagged `deleted`). */
  messages(): Message[] {
    return this.order.map((seq) => this.bySeq.get(seq) as Message);
  }

  /** The seq before which `seq` would be listed, or null when it is last. */
  successor(seq: bigint): bigint | null {
    const i = this.indexAfter(seq);
    return i < this.order.length ? (this.order[i] as bigint) : null;
  }

  /**
   * Loads the room's first history page (once, before anything else): its
   * messages, whether older ones exist, and the room's headRev, which all of
   * it is complete up to.
   */
  loadLatest(messages: readonly Message[], headRev: bigint, hasMore: boolean): Change[] {
    const changes = this.loadPage(messages, hasMore);
    this.markSynced(headRev);
    return changes;
  }

  /** Adds a page of older messages (scrolling back). */
  loadOlder(messages: readonly Message[], hasMore: boolean): Change[] {
    return this.loadPage(messages, hasMore);
  }

  /** The window starts at the page's lowest seq, or at seq 1 when nothing older exists. */
  private loadPage(messages: readonly Message[], hasMore: boolean): Change[] {
    let low = 1n;
    if (hasMore) {
      low = messages[0]?.seq ?? 1n;
      for (const m of messages) if (m.seq < low) low = m.seq;
    }
    this.windowStart = low;
    this.more = hasMore;
    return this.applyAll(messages);
  }

  /**
   * Keeps only the newest `keep` messages (at least one): the window starts
   * at the oldest one kept, older ones are forgotten (changes to them are
   * ignored, as for any message before the window) and come back by
   * scrolling back. Returns the seqs dropped. syncedRev is not affected.
   */
  trimTo(keep: number): bigint[] {
    const n = this.order.length - Math.max(1, Math.floor(keep));
    if (n <= 0) return [];
    const dropped = this.order.splice(0, n);
    for (const seq of dropped) this.bySeq.delete(seq);
    this.windowStart = this.order[0] as bigint;
    this.more = true;
    return dropped;
  }

  /** The seq to page back from (`?before=`), or null when nothing older exists. */
  olderCursor(): bigint | null {
    return this.more ? this.oldestSeq() : null;
  }

  /** The lowest seq loaded, or null when nothing is. */
  oldestSeq(): bigint | null {
    return this.order.length > 0 ? (this.order[0] as bigint) : null;
  }

  applyAll(messages: readonly Message[]): Change[] {
    const out: Change[] = [];
    for (const m of messages) {
      const c = this.apply(m);
      if (c) out.push(c);
    }
    return out;
  }

  /**
   * Applies one message in its state after a change. Returns what changed, or
   * null when this rev (or a newer one) was applied already.
   */
  apply(message: Message): Change | null {
    const previous = this.bySeq.get(message.seq);
    if (previous) {
      if (message.rev <= previous.rev) return null;
      this.bySeq.set(message.seq, message);
      if (message.deleted) {
        return previous.deleted ? null : { kind: "deleted", message, previous };
      }
      return { kind: "edited", message, previous };
    }
    // Outside the loaded window (an edit of a message older than the first
    // page): scrolling back will load its current state.
    if (message.seq < this.windowStart) return null;
    this.bySeq.set(message.seq, message);
    this.order.splice(this.indexAfter(message.seq), 0, message.seq);
    return message.deleted ? { kind: "deleted", message } : { kind: "created", message };
  }

  /**
   * One event of the subscription stream: applied, and, since the stream is
   * complete and ordered by rev, it also advances syncedRev.
   */
  applyStream(message: Message): Change | null {
    const c = this.apply(message);
    this.markSynced(message.rev);
    return c;
  }

  /** Every change up to `rev` has been applied. */
  markSynced(rev: bigint): void {
    if (rev > this.synced) this.synced = rev;
  }

  /** Index of the first seq greater than `seq` in the sorted order. */
  private indexAfter(seq: bigint): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.order[mid] as bigint) <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
