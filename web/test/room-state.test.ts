// @vitest-environment node
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { type Message, MessageSchema } from "../src/protocol.js";
import { RoomState } from "../src/room-state.js";

function msg(seq: number, rev: number, body = `m${seq}`, deleted = false): Message {
  return create(MessageSchema, {
    room: "lobby",
    seq: BigInt(seq),
    rev: BigInt(rev),
    body: deleted ? "" : body,
    deleted,
    clientMsgId: `c${seq}`,
    author: { id: "u1", displayName: "U1" },
  });
}

const view = (s: RoomState) => s.messages().map((m) => `${m.seq}:${m.rev}:${m.deleted ? "x" : m.body}`);

describe("room state", () => {
  it("orders messages by seq whatever order they arrive in", () => {
    const s = new RoomState("lobby");
    for (const seq of [5, 1, 3, 2, 4]) s.apply(msg(seq, seq));
    expect(s.messages().map((m) => Number(m.seq))).toEqual([1, 2, 3, 4, 5]);
    expect(s.successor(3n)).toBe(4n);
    expect(s.successor(5n)).toBeNull();
  });

  it("ignores a rev it already applied: no duplicates", () => {
    const s = new RoomState("lobby");
    expect(s.apply(msg(1, 1))?.kind).toBe("created");
    expect(s.apply(msg(1, 1))).toBeNull();
    expect(s.apply(msg(2, 2))?.kind).toBe("created");
    expect(s.apply(msg(2, 2))).toBeNull();
    expect(s.size).toBe(2);
  });

  it("applies edits and deletes by rev, never rolling back", () => {
    const s = new RoomState("lobby");
    s.apply(msg(1, 1, "hello"));
    const e = s.apply(msg(1, 3, "hello, edited"));
    expect(e?.kind).toBe("edited");
    expect(e?.kind === "edited" && e.previous.body).toBe("hello");
    // A stale copy (the original creation replayed late) changes nothing.
    expect(s.apply(msg(1, 1, "hello"))).toBeNull();
    expect(s.get(1n)?.body).toBe("hello, edited");
    const d = s.apply(msg(1, 4, "", true));
    expect(d?.kind).toBe("deleted");
    expect(s.get(1n)?.deleted).toBe(true);
    expect(s.apply(msg(1, 3, "hello, edited"))).toBeNull();
    expect(s.get(1n)?.deleted).toBe(true);
    expect(s.get(1n)?.rev).toBe(4n);
    // Deleted again (a repeat of the tombstone with a newer rev): nothing new to show.
    expect(s.apply(msg(1, 5, "", true))).toBeNull();
    expect(s.get(1n)?.rev).toBe(5n);
  });

  it("converges: any order, with repeats, gives the same room as watching live", () => {
    // A change log: creations, edits and deletions, each with its rev.
    const log: Message[] = [];
    let rev = 0;
    const bodies = new Map<number, Message>();
    let rnd = 12345;
    const rand = (n: number) => {
      rnd = (rnd * 1103515245 + 12345) & 0x7fffffff;
      return rnd % n;
    };
    for (let seq = 1; seq <= 40; seq++) {
      const m = msg(seq, ++rev);
      log.push(m);
      bodies.set(seq, m);
      if (seq > 3 && rand(3) === 0) {
        const target = 1 + rand(seq);
        const old = bodies.get(target) as Message;
        const changed = rand(2) === 0 ? msg(target, ++rev, `${old.body}!`) : msg(target, ++rev, "", true);
        if (!old.deleted) {
          log.push(changed);
          bodies.set(target, changed);
        } else rev--;
      }
    }
    const live = new RoomState("lobby");
    for (const m of log) live.applyStream(m);
    expect(live.syncedRev).toBe(BigInt(rev));

    for (let trial = 0; trial < 50; trial++) {
      const shuffled = [...log, ...log.slice(0, rand(log.length))];
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = rand(i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j] as Message, shuffled[i] as Message];
      }
      const s = new RoomState("lobby");
      for (const m of shuffled) s.apply(m);
      expect(view(s)).toEqual(view(live));
    }
  });

  it("catch-up after a rev (current states only) converges to the live view", () => {
    const live = new RoomState("lobby");
    const cut = new RoomState("lobby");
    const changes = [msg(1, 1), msg(2, 2), msg(3, 3), msg(2, 4, "two!"), msg(4, 5), msg(1, 6, "", true)];
    for (const m of changes) live.applyStream(m);
    for (const m of changes.slice(0, 3)) cut.applyStream(m);
    expect(cut.syncedRev).toBe(3n);
    // The store answers "rev > 3" with each changed message in its current state.
    const current = new Map<bigint, Message>();
    for (const m of changes) current.set(m.seq, m);
    const after = [...current.values()].filter((m) => m.rev > cut.syncedRev).sort((a, b) => Number(a.rev - b.rev));
    cut.applyAll(after);
    cut.markSynced(6n);
    expect(view(cut)).toEqual(view(live));
  });

  it("advances syncedRev only through complete sources, not through an ack", () => {
    const s = new RoomState("lobby");
    s.loadLatest([msg(1, 1), msg(2, 2)], 2n, false);
    expect(s.syncedRev).toBe(2n);
    // Our own message acked with rev 5: revs 3 and 4 are still unseen.
    s.apply(msg(5, 5));
    expect(s.syncedRev).toBe(2n);
    expect(s.get(5n)?.rev).toBe(5n);
    s.applyStream(msg(3, 3));
    expect(s.syncedRev).toBe(3n);
  });

  it("loads the newest page, then older pages, and ignores edits of messages before the window", () => {
    const s = new RoomState("lobby");
    expect(s.loaded).toBe(false);
    s.loadLatest([msg(8, 8), msg(9, 9), msg(10, 10)], 12n, true);
    expect(s.loaded).toBe(true);
    expect(s.hasOlder).toBe(true);
    expect(s.oldestSeq()).toBe(8n);
    expect(s.apply(msg(2, 13, "old, edited"))).toBeNull();
    expect(s.size).toBe(3);
    s.loadOlder([msg(1, 1), msg(2, 13, "old, edited"), msg(3, 3), msg(4, 4), msg(5, 5), msg(6, 6), msg(7, 7)], false);
    expect(s.hasOlder).toBe(false);
    expect(s.messages().map((m) => Number(m.seq))).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(s.get(2n)?.body).toBe("old, edited");
  });

  it("an empty room's first page covers everything from seq 1", () => {
    const s = new RoomState("lobby");
    s.loadLatest([], 0n, false);
    expect(s.apply(msg(1, 1))?.kind).toBe("created");
  });

  it("trims to the newest messages, forgets the rest and ignores changes to them", () => {
    const s = new RoomState("lobby");
    s.loadLatest([msg(1, 1), msg(2, 2), msg(3, 3), msg(4, 4)], 4n, false);
    expect(s.hasOlder).toBe(false);
    expect(s.trimTo(10)).toEqual([]);
    expect(s.trimTo(2)).toEqual([1n, 2n]);
    expect(view(s)).toEqual(["3:3:m3", "4:4:m4"]);
    expect(s.hasOlder).toBe(true);
    expect(s.oldestSeq()).toBe(3n);
    expect(s.syncedRev).toBe(4n);
    // An edit of a forgotten message is not resurrected into the list.
    expect(s.apply(msg(1, 5, "edited"))).toBeNull();
    expect(s.get(1n)).toBeUndefined();
    // Scrolling back brings them again.
    s.loadOlder([msg(1, 5, "edited"), msg(2, 2)], false);
    expect(view(s)).toEqual(["1:5:edited", "2:2:m2", "3:3:m3", "4:4:m4"]);
    expect(s.hasOlder).toBe(false);
    // At least one message is always kept.
    expect(s.trimTo(0)).toEqual([1n, 2n, 3n]);
    expect(s.size).toBe(1);
  });

  it("starts the window at a page's lowest seq, or at seq 1 when nothing is older", () => {
    // A page listed newest first, with older messages left.
    const s = new RoomState("lobby");
    expect(s.loaded).toBe(false);
    expect(s.oldestSeq()).toBeNull();
    s.loadLatest([msg(9, 9), msg(7, 7), msg(8, 8)], 9n, true);
    expect(s.loaded).toBe(true);
    expect(s.hasOlder).toBe(true);
    expect(s.apply(msg(6, 10, "edited before the window"))).toBeNull();
    expect(s.apply(msg(7, 11, "edited in the window"))?.kind).toBe("edited");
    // Nothing older: the window reaches seq 1, whatever the page's lowest seq.
    const all = new RoomState("lobby");
    all.loadLatest([msg(3, 3), msg(4, 4)], 4n, false);
    expect(all.hasOlder).toBe(false);
    expect(all.apply(msg(2, 5, "an older one, edited"))?.kind).toBe("created");
    const older = new RoomState("lobby");
    older.loadLatest([msg(5, 5)], 5n, true);
    older.loadOlder([msg(4, 4), msg(2, 2), msg(3, 3)], true);
    expect(older.apply(msg(1, 6))).toBeNull();
    expect(older.oldestSeq()).toBe(2n);
    older.loadOlder([msg(1, 1)], false);
    expect(older.hasOlder).toBe(false);
    expect(view(older).map((v) => v.split(":")[0])).toEqual(["1", "2", "3", "4", "5"]);
  });

  it("takes everything before the first history page, and shows a tombstone seen first as deleted", () => {
    const s = new RoomState("lobby");
    expect(s.apply(msg(4, 4))?.kind).toBe("created");
    expect(s.apply(msg(2, 6, "", true))?.kind).toBe("deleted");
    expect(s.applyAll([msg(4, 4), msg(3, 3), msg(2, 2)]).map((c) => `${c.kind}:${c.message.seq}`)).toEqual(["created:3"]);
    expect(s.oldestSeq()).toBe(2n);
  });

  it("never moves syncedRev back", () => {
    const s = new RoomState("lobby");
    s.markSynced(7n);
    s.markSynced(3n);
    s.applyStream(msg(1, 2));
    expect(s.syncedRev).toBe(7n);
    s.markSynced(7n);
    s.markSynced(8n);
    expect(s.syncedRev).toBe(8n);
  });

  it("trims nothing, and keeps hasOlder, when it holds no more than asked", () => {
    const s = new RoomState("lobby");
    s.loadLatest([msg(1, 1), msg(2, 2)], 2n, false);
    expect(s.trimTo(2)).toEqual([]);
    expect(s.trimTo(2.9)).toEqual([]);
    expect(s.hasOlder).toBe(false);
    expect(s.apply(msg(1, 3, "still in the window"))?.kind).toBe("edited");
    expect(new RoomState("x").trimTo(0)).toEqual([]);
  });
});
