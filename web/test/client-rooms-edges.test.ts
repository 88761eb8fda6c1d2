// @vitest-environment node
// The edges of the client's room features: the server's role beating the
// token's, rooms it does not follow, frames about others, what close()
// stops, and when an access change is reported.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ConnectOptions, ParleyClient } from "../src/client.js";
import type { Clock } from "../src/clock.js";
import { ActionKind, create, MessageSchema, RoomMode, Role } from "../src/protocol.js";
import { FakeGateway } from "./fakes.js";

function start(gw: FakeGateway, token: string, extra: Partial<ConnectOptions> = {}) {
  const client = new ParleyClient({
    url: "http://gw.test",
    token,
    WebSocket: gw.WebSocket,
    fetch: gw.fetch,
    network: null,
    backoff: { random: () => 0.5 },
    ...extra,
  });
  const access: string[] = [];
  client.on("access", (e) => access.push(`${Role[e.access.role]} ${e.access.canPost} ${e.access.muted} ${e.access.mutedUntilMs} ${e.access.member}`));
  client.subscribe("lobby");
  client.start();
  return { client, access };
}

const sam = create(MessageSchema, { room: "lobby", seq: 1n, author: { id: "sam" } });

describe("client rooms, edges", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("the server's role in the room beats the token's, both ways; no role there falls back to the token's", async () => {
    const gw = new FakeGateway();
    gw.store.roles.set("pat", Role.ORGANIZER); // a membership as organizer
    gw.store.roles.set("olga", Role.PARTICIPANT);
    gw.store.roles.set("una", Role.UNSPECIFIED);
    const pat = start(gw, "pat");
    const olga = start(gw, "olga@organizer");
    const una = start(gw, "una@organizer");
    await vi.advanceTimersByTimeAsync(50);
    expect([pat.client.roleIn("lobby"), pat.client.canModerate("lobby"), pat.client.canModify(sam)]).toEqual([Role.ORGANIZER, true, true]);
    expect([olga.client.roleIn("lobby"), olga.client.canModerate("lobby"), olga.client.canModify(sam)]).toEqual([Role.PARTICIPANT, false, false]);
    expect(una.client.roleIn("lobby")).toBe(Role.ORGANIZER);
    // A room it does not follow: the token's role, and nothing known.
    expect(pat.client.roleIn("elsewhere")).toBe(Role.PARTICIPANT);
    expect([pat.client.access("elsewhere"), pat.client.roomInfo("elsewhere"), pat.client.typingUsers("elsewhere")]).toEqual([null, null, []]);
    for (const c of [pat, olga, una]) c.client.close();
  });

  it("calls about a room it does not follow work and change nothing here", async () => {
    const gw = new FakeGateway();
    gw.addRoom("stage");
    const olga = start(gw, "olga@organizer");
    await vi.advanceTimersByTimeAsync(50);
    expect((await olga.client.setMode("stage", RoomMode.CLOSED))?.mode).toBe(RoomMode.CLOSED);
    expect((await olga.client.refreshAccess("stage"))?.role).toBe(Role.ORGANIZER);
    expect((await olga.client.markRead("stage", 0n, 0n)).unreadCount).toBe(0);
    expect(olga.client.sendTyping("stage")).toBe(false);
    expect(olga.client.roomInfo("stage")).toBeNull();
    expect(olga.client.roomInfo("lobby")?.mode).toBe(RoomMode.OPEN);
    olga.client.close();
  });

  it("markRead works in a room whose server states no access", async () => {
    const gw = new FakeGateway();
    gw.store.statesAccess = false;
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    expect((await pat.client.markRead("lobby", 0n, 0n)).lastReadSeq).toBe(0n);
    expect(pat.client.access("lobby")).toBeNull();
    pat.client.close();
  });

  it("a first typing signal goes out even at the clock's very start", async () => {
    vi.setSystemTime(0);
    const gw = new FakeGateway();
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    vi.setSystemTime(100);
    expect(pat.client.sendTyping("lobby")).toBe(true);
    pat.client.close();
  });

  it("ignores typing about itself, about rooms it does not follow, and with no user", async () => {
    const gw = new FakeGateway();
    const pat = start(gw, "pat", { typing: true });
    await vi.advanceTimersByTimeAsync(50);
    const shown: unknown[] = [];
    pat.client.on("typing", (e) => shown.push(e));
    gw.last.push({ kind: { case: "typing", value: { room: "lobby", user: { id: "pat" } } } });
    gw.last.push({ kind: { case: "typing", value: { room: "elsewhere", user: { id: "sam" } } } });
    gw.last.push({ kind: { case: "typing", value: { room: "lobby" } } });
    gw.last.push({ kind: { case: "presence", value: { room: "elsewhere", count: 3 } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(shown).toEqual([]);
    expect(pat.client.presence("elsewhere")).toBeNull();
    expect(pat.client.state).toBe("live");
    pat.client.close();
  });

  it("a room event that names its room only in the action is applied, and the room after it is reported", async () => {
    const gw = new FakeGateway();
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    const infos: Array<RoomMode | undefined> = [];
    pat.client.on("room-event", (e) => infos.push(e.info?.mode));
    gw.last.push({ kind: { case: "roomEvent", value: { action: { room: "lobby", kind: ActionKind.MUTE, targetUserId: "pat" } } } });
    gw.store.mode = RoomMode.ANNOUNCEMENTS;
    gw.store.act({ kind: ActionKind.SET_MODE, mode: RoomMode.ANNOUNCEMENTS });
    await vi.advanceTimersByTimeAsync(10);
    expect(infos).toEqual([undefined, RoomMode.ANNOUNCEMENTS]);
    expect(pat.client.access("lobby")?.muted).toBe(true);
    pat.client.close();
  });

  it("reports an access change of any one field: role, membership, mute, its end", async () => {
    const gw = new FakeGateway();
    gw.store.mode = RoomMode.ANNOUNCEMENTS; // so a mute changes `muted` alone
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    const push = (action: Record<string, unknown>) => gw.store.act(action as never);
    push({ kind: ActionKind.MUTE, targetUserId: "pat", untilMs: BigInt(Date.now() + 60_000) });
    push({ kind: ActionKind.MUTE, targetUserId: "pat", untilMs: BigInt(Date.now() + 120_000) });
    push({ kind: ActionKind.ADD_MEMBER, targetUserId: "pat", role: Role.PARTICIPANT });
    push({ kind: ActionKind.ADD_MEMBER, targetUserId: "pat", role: Role.ORGANIZER });
    push({ kind: ActionKind.ADD_MEMBER, targetUserId: "pat", role: Role.ORGANIZER }); // nothing new: not reported
    await vi.advanceTimersByTimeAsync(10);
    const t1 = Date.now() + 60_000 - 10;
    expect(pat.access).toEqual([
      "PARTICIPANT false false 0 false",
      `PARTICIPANT false true ${t1} false`,
      `PARTICIPANT false true ${t1 + 60_000} false`,
      `PARTICIPANT false true ${t1 + 60_000} true`,
      `ORGANIZER true true ${t1 + 60_000} true`,
    ]);
    pat.client.close();
  });

  it("a mute until lifted sets no timer; close() stops a timed mute's timer and forgets who types", async () => {
    const gw = new FakeGateway();
    let waits: number[] = [];
    const clock: Clock = {
      now: () => Date.now(),
      setTimeout: (fn, ms) => (waits.push(ms), setTimeout(fn, ms)),
      clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    };
    const pat = start(gw, "pat", { clock, typing: true, heartbeatIntervalMs: 3_600_000, heartbeatTimeoutMs: 3_600_000 });
    await vi.advanceTimersByTimeAsync(50);
    waits = [];
    gw.store.act({ kind: ActionKind.MUTE, targetUserId: "pat", untilMs: 0n });
    await vi.advanceTimersByTimeAsync(1000);
    expect(waits.filter((ms) => ms <= 0)).toEqual([]);
    gw.store.act({ kind: ActionKind.MUTE, targetUserId: "pat", untilMs: BigInt(Date.now() + 5000) });
    gw.last.push({ kind: { case: "typing", value: { room: "lobby", user: { id: "sam" } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(pat.client.typingUsers("lobby").map((u) => u.id)).toEqual(["sam"]);
    const reports = pat.access.length;
    pat.client.close();
    expect(pat.client.typingUsers("lobby")).toEqual([]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(pat.access.length).toBe(reports); // the mute's end is not reported after close()
  });
});
