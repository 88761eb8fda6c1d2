// @vitest-environment node
// The client in a moderated room: its own access from the server (Room.me),
// kept up to date live by room events; presence and typing; the organizer's
// REST calls (moderation, room mode, read state) and their refusals.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ConnectOptions, ParleyClient } from "../src/client.js";
import { TYPING_SEND_INTERVAL_MS, TYPING_SHOWN_MS } from "../src/constants.js";
import { HttpError } from "../src/history.js";
import { ActionKind, create, MessageSchema, RoomMode, Role, Rule } from "../src/protocol.js";
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
  const access: Array<{ canPost: boolean; rule: string; muted: boolean }> = [];
  client.on("access", (e) => access.push({ canPost: e.access.canPost, rule: Rule[e.access.postRule] ?? "", muted: e.access.muted }));
  client.subscribe("lobby");
  client.start();
  return { client, access };
}

const typingFrames = (gw: FakeGateway) => gw.received.filter((f) => f.kind.case === "typing");

describe("client in a moderated room", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("asks for presence and typing only when told to", async () => {
    const gw = new FakeGateway();
    const a = start(gw, "pat");
    const b = start(gw, "sam", { presence: true, typing: true });
    await vi.advanceTimersByTimeAsync(50);
    const opts = gw.received.filter((f) => f.kind.case === "options").map((f) => (f.kind.case === "options" ? [f.kind.value.presence, f.kind.value.typing] : null));
    expect(opts).toEqual([
      [false, false],
      [true, true],
    ]);
    a.client.close();
    b.client.close();
  });

  it("knows its role and access from the server's Room.me, per room", async () => {
    const gw = new FakeGateway();
    const { client, access } = start(gw, "pat");
    expect(client.access("lobby")).toBeNull();
    expect(client.roleIn("lobby")).toBe(Role.UNSPECIFIED);
    await vi.advanceTimersByTimeAsync(50);
    expect(client.state).toBe("live");
    expect(client.access("lobby")?.role).toBe(Role.PARTICIPANT);
    expect(client.canModerate("lobby")).toBe(false);
    expect(client.roomInfo("lobby")?.mode).toBe(RoomMode.OPEN);
    // One report: the history page and Subscribed said the same.
    expect(access).toEqual([{ canPost: true, rule: "UNSPECIFIED", muted: false }]);
    client.close();
  });

  it("a mute of this user arrives live: access says MUTED; an unmute gives posting back", async () => {
    const gw = new FakeGateway();
    const olga = start(gw, "olga@organizer");
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    const events: string[] = [];
    pat.client.on("room-event", (e) => events.push(`${ActionKind[e.action.kind]} ${e.action.targetUserId}`));
    await olga.client.mute("lobby", "pat", { reason: "calm down" });
    await vi.advanceTimersByTimeAsync(10);
    expect(events).toEqual(["MUTE pat"]);
    expect(pat.access.at(-1)).toEqual({ canPost: false, rule: "MUTED", muted: true });
    expect(pat.client.access("lobby")?.mutedUntilMs).toBe(0n);
    // Someone else's mute leaves the organizer's own access alone.
    expect(olga.client.access("lobby")?.canPost).toBe(true);
    await olga.client.unmute("lobby", "pat");
    await vi.advanceTimersByTimeAsync(10);
    expect(pat.access.at(-1)).toEqual({ canPost: true, rule: "UNSPECIFIED", muted: false });
    expect(gw.store.actions.map((a) => ActionKind[a.kind])).toEqual(["MUTE", "UNMUTE"]);
    expect(gw.store.actions[0]?.reason).toBe("calm down");
    olga.client.close();
    pat.client.close();
  });

  it("a timed mute ends by itself at its end", async () => {
    const gw = new FakeGateway();
    const olga = start(gw, "olga@organizer");
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    await olga.client.mute("lobby", "pat", { durationMs: 60_000 });
    await vi.advanceTimersByTimeAsync(10);
    expect(pat.client.access("lobby")?.canPost).toBe(false);
    expect(gw.store.actions[0]?.untilMs).toBeGreaterThan(0n);
    await vi.advanceTimersByTimeAsync(60_000 - 100);
    expect(pat.client.access("lobby")?.canPost).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(pat.access.at(-1)).toEqual({ canPost: true, rule: "UNSPECIFIED", muted: false });
    olga.client.close();
    pat.client.close();
  });

  it("a mute of weeks holds for weeks (longer than one timer can wait), then ends", async () => {
    const gw = new FakeGateway();
    const olga = start(gw, "olga@organizer", { heartbeatIntervalMs: 3_600_000, heartbeatTimeoutMs: 3_600_000 });
    const pat = start(gw, "pat", { heartbeatIntervalMs: 3_600_000, heartbeatTimeoutMs: 3_600_000 });
    await vi.advanceTimersByTimeAsync(50);
    const day = 86_400_000;
    await olga.client.mute("lobby", "pat", { durationMs: 30 * day });
    await vi.advanceTimersByTimeAsync(10);
    olga.client.close();
    await vi.advanceTimersByTimeAsync(26 * day);
    expect(pat.client.access("lobby")?.canPost).toBe(false);
    await vi.advanceTimersByTimeAsync(4 * day);
    expect(pat.client.access("lobby")?.canPost).toBe(true);
    pat.client.close();
  });

  it("announcements: participants may no longer post, organizers still may; the room's mode is known", async () => {
    const gw = new FakeGateway();
    const olga = start(gw, "olga@organizer");
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    const room = await olga.client.setMode("lobby", RoomMode.ANNOUNCEMENTS);
    expect(room?.mode).toBe(RoomMode.ANNOUNCEMENTS);
    await vi.advanceTimersByTimeAsync(10);
    expect(pat.access.at(-1)).toEqual({ canPost: false, rule: "ANNOUNCEMENTS", muted: false });
    expect(pat.client.roomInfo("lobby")?.mode).toBe(RoomMode.ANNOUNCEMENTS);
    expect(olga.client.access("lobby")?.canPost).toBe(true);
    expect(olga.client.roomInfo("lobby")?.mode).toBe(RoomMode.ANNOUNCEMENTS);
    await olga.client.setMode("lobby", RoomMode.CLOSED);
    await vi.advanceTimersByTimeAsync(10);
    expect(olga.client.access("lobby")?.postRule).toBe(Rule.ROOM_CLOSED);
    expect(pat.access.at(-1)?.rule).toBe("ROOM_CLOSED");
    olga.client.close();
    pat.client.close();
  });

  it("a refused send names the rule, and the access is asked again from the server", async () => {
    const gw = new FakeGateway();
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    // Muted behind the client's back (no room event reached it).
    gw.store.muted.set("pat", 0n);
    const errors: Array<{ code: string; rule?: string | undefined }> = [];
    pat.client.on("send-error", (e) => errors.push({ code: e.code, rule: e.rule }));
    pat.client.send("lobby", "hello?");
    await vi.advanceTimersByTimeAsync(50);
    expect(errors).toEqual([{ code: "PERMISSION_DENIED", rule: "MUTED" }]);
    expect(gw.store.stored).toHaveLength(0);
    expect(gw.requests).toContain("GET /v1/rooms/lobby");
    expect(pat.access.at(-1)).toEqual({ canPost: false, rule: "MUTED", muted: true });
    pat.client.close();
  });

  it("a participant's moderation is refused with the rule, and nothing is stored", async () => {
    const gw = new FakeGateway();
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    const err = await pat.client.mute("lobby", "sam").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect([(err as HttpError).status, (err as HttpError).code, (err as HttpError).rule]).toEqual([403, "PERMISSION_DENIED", "ORGANIZER_ONLY"]);
    expect((err as HttpError).message).toContain("rule ORGANIZER_ONLY");
    const err2 = await pat.client.setMode("lobby", RoomMode.CLOSED).catch((e: unknown) => e);
    expect((err2 as HttpError).rule).toBe("ORGANIZER_ONLY");
    expect(gw.store.actions).toEqual([]);
    expect(gw.store.mode).toBe(RoomMode.OPEN);
    pat.client.close();
  });

  it("sends moderation as the gateway documents it (POST .../moderation, proto3 JSON)", async () => {
    const gw = new FakeGateway();
    const bodies: string[] = [];
    const fetch: typeof gw.fetch = async (u, init) => {
      if (init?.method === "POST" || init?.method === "PATCH") bodies.push(`${init.method} ${new URL(u).pathname} ${String(init.body)}`);
      return gw.fetch(u, init);
    };
    const olga = start(gw, "olga@organizer", { fetch });
    await vi.advanceTimersByTimeAsync(50);
    await olga.client.mute("lobby", "pat", { durationMs: 900_000, reason: "r" });
    await olga.client.removeUser("lobby", "sam");
    await olga.client.setMode("lobby", RoomMode.ANNOUNCEMENTS);
    await olga.client.markRead("lobby", 0n, 0n);
    expect(bodies).toEqual([
      'POST /v1/rooms/lobby/moderation {"userId":"pat","action":"MODERATE_ACTION_MUTE","durationMs":"900000","reason":"r"}',
      'POST /v1/rooms/lobby/moderation {"userId":"sam","action":"MODERATE_ACTION_REMOVE"}',
      'PATCH /v1/rooms/lobby {"mode":"ROOM_MODE_ANNOUNCEMENTS"}',
      "POST /v1/rooms/lobby/read {}",
    ]);
    olga.client.close();
  });

  it("markRead saves the read state and updates the user's access", async () => {
    const gw = new FakeGateway();
    const olga = start(gw, "olga@organizer");
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    for (const b of ["a", "b", "c"]) olga.client.send("lobby", b);
    await vi.advanceTimersByTimeAsync(50);
    const r = await pat.client.markRead("lobby", 2n, 2n);
    expect([r.lastReadSeq, r.lastReadRev, r.unreadCount]).toEqual([2n, 2n, 1]);
    const a = pat.client.access("lobby");
    expect([a?.lastReadSeq, a?.lastReadRev, a?.unreadCount]).toEqual([2n, 2n, 1]);
    expect(gw.store.readBy.get("pat")).toEqual({ seq: 2n, rev: 2n });
    olga.client.close();
    pat.client.close();
  });

  it("reports presence: the count and the first names", async () => {
    const gw = new FakeGateway();
    const pat = start(gw, "pat", { presence: true });
    const seen: Array<[number, string[]]> = [];
    pat.client.on("presence", (e) => seen.push([e.count, e.users.map((u) => u.id)]));
    await vi.advanceTimersByTimeAsync(50);
    const olga = start(gw, "olga@organizer");
    await vi.advanceTimersByTimeAsync(50);
    expect(seen).toEqual([
      [1, ["pat"]],
      [2, ["olga", "pat"]],
    ]);
    expect(pat.client.presence("lobby")?.count).toBe(2);
    expect(pat.client.presence("nowhere")).toBeNull();
    pat.client.close();
    olga.client.close();
  });

  it("typing: sent at most once per interval, shown to others until it expires or their message arrives", async () => {
    const gw = new FakeGateway();
    const olga = start(gw, "olga@organizer", { typing: true });
    const pat = start(gw, "pat", { typing: true });
    expect(pat.client.sendTyping("lobby")).toBe(false); // not live yet
    await vi.advanceTimersByTimeAsync(50);
    const shown: string[][] = [];
    olga.client.on("typing", (e) => shown.push(e.users.map((u) => u.id)));
    expect(pat.client.sendTyping("lobby")).toBe(true);
    expect(pat.client.sendTyping("lobby")).toBe(false);
    await vi.advanceTimersByTimeAsync(TYPING_SEND_INTERVAL_MS - 100);
    expect(pat.client.sendTyping("lobby")).toBe(false);
    expect(typingFrames(gw)).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(pat.client.sendTyping("lobby")).toBe(true);
    await vi.advanceTimersByTimeAsync(10);
    expect(olga.client.typingUsers("lobby").map((u) => u.id)).toEqual(["pat"]);
    // Their own typing is never shown to the typist.
    expect(pat.client.typingUsers("lobby")).toEqual([]);
    pat.client.send("lobby", "done typing");
    await vi.advanceTimersByTimeAsync(10);
    expect(olga.client.typingUsers("lobby")).toEqual([]);
    expect(shown).toEqual([["pat"], []]);
    // And without a message, it expires.
    await vi.advanceTimersByTimeAsync(TYPING_SEND_INTERVAL_MS);
    pat.client.sendTyping("lobby");
    await vi.advanceTimersByTimeAsync(TYPING_SHOWN_MS + 10);
    expect(shown).toEqual([["pat"], [], ["pat"], []]);
    olga.client.close();
    pat.client.close();
  });

  it("sends no typing while the user may not post", async () => {
    const gw = new FakeGateway();
    gw.store.mode = RoomMode.ANNOUNCEMENTS;
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    expect(pat.client.access("lobby")?.postRule).toBe(Rule.ANNOUNCEMENTS);
    expect(pat.client.sendTyping("lobby")).toBe(false);
    expect(typingFrames(gw)).toHaveLength(0);
    pat.client.close();
  });

  it("an organizer of the room may change anyone's message; a participant only their own", async () => {
    const gw = new FakeGateway();
    const olga = start(gw, "olga@organizer");
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    const bySam = create(MessageSchema, { room: "lobby", seq: 1n, author: { id: "sam" } });
    const byPat = create(MessageSchema, { room: "lobby", seq: 2n, author: { id: "pat" } });
    expect(olga.client.canModify(bySam)).toBe(true);
    expect(pat.client.canModify(bySam)).toBe(false);
    expect(pat.client.canModify(byPat)).toBe(true);
    expect(olga.client.canModerate("lobby")).toBe(true);
    olga.client.close();
    pat.client.close();
  });

  it("removed by an organizer: the room ends with PERMISSION_DENIED for that room, and no more of it arrives", async () => {
    const gw = new FakeGateway();
    const olga = start(gw, "olga@organizer");
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    const errors: Array<{ room?: string | undefined; code: string; rule?: string | undefined }> = [];
    pat.client.on("error", (e) => errors.push({ room: e.room, code: e.code, rule: e.rule }));
    const seen: string[] = [];
    pat.client.on("message", (e) => seen.push(e.message.body));
    await olga.client.removeUser("lobby", "pat");
    await vi.advanceTimersByTimeAsync(20);
    expect(errors).toEqual([{ room: "lobby", code: "PERMISSION_DENIED", rule: "REMOVED" }]);
    expect(pat.client.isLive("lobby")).toBe(false);
    olga.client.send("lobby", "after the removal");
    await vi.advanceTimersByTimeAsync(20);
    expect(seen).toEqual([]);
    olga.client.close();
    pat.client.close();
  });

  it("a room event for a room it does not follow, or without an action, changes nothing", async () => {
    const gw = new FakeGateway();
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    const events: unknown[] = [];
    pat.client.on("room-event", (e) => events.push(e));
    gw.last.push({ kind: { case: "roomEvent", value: { action: { kind: ActionKind.MUTE, room: "elsewhere", targetUserId: "pat" }, room: { name: "elsewhere" } } } });
    gw.last.push({ kind: { case: "roomEvent", value: { room: { name: "lobby" } } } });
    await vi.advanceTimersByTimeAsync(10);
    expect(events).toEqual([]);
    expect(pat.client.access("lobby")?.canPost).toBe(true);
    pat.client.close();
  });

  it("with a server that states no access, a mute event still takes posting away", async () => {
    const gw = new FakeGateway();
    gw.store.statesAccess = false;
    const pat = start(gw, "pat");
    await vi.advanceTimersByTimeAsync(50);
    expect(pat.client.access("lobby")).toBeNull();
    expect(pat.client.roleIn("lobby")).toBe(Role.PARTICIPANT); // the token's, from Authenticated
    gw.store.act({ kind: ActionKind.MUTE, targetUserId: "pat" });
    await vi.advanceTimersByTimeAsync(10);
    expect(pat.access.at(-1)).toEqual({ canPost: false, rule: "MUTED", muted: true });
    pat.client.close();
  });
});
