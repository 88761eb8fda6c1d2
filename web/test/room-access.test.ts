// room-access: the user's own access after a room action, with the core's
// order of write rules (closed, organizer, announcements, muted).
import { type MessageInitShape, create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActionKind, ModerationActionSchema, RoomAccessSchema, RoomMode, Role, Rule } from "../src/protocol.js";
import { applyAction, concerns, isMuted, postRule, withPostRule } from "../src/room-access.js";

const NOW = 1_767_225_600_000;
type Init = MessageInitShape<typeof RoomAccessSchema>;
const participant = (extra: Init = {}) => create(RoomAccessSchema, { role: Role.PARTICIPANT, canPost: true, ...extra });
const organizer = (extra: Init = {}) => create(RoomAccessSchema, { role: Role.ORGANIZER, canPost: true, ...extra });
const action = (kind: ActionKind, extra: Record<string, unknown> = {}) => create(ModerationActionSchema, { kind, room: "r", ...extra });

describe("room-access", () => {
  it("orders the write rules as the core does", () => {
    const mutedP = participant({ muted: true });
    const mutedO = organizer({ muted: true });
    expect(postRule(RoomMode.CLOSED, organizer(), NOW)).toBe(Rule.ROOM_CLOSED);
    expect(postRule(RoomMode.CLOSED, mutedP, NOW)).toBe(Rule.ROOM_CLOSED);
    expect(postRule(RoomMode.ANNOUNCEMENTS, organizer(), NOW)).toBe(Rule.UNSPECIFIED);
    expect(postRule(RoomMode.ANNOUNCEMENTS, mutedO, NOW)).toBe(Rule.UNSPECIFIED);
    expect(postRule(RoomMode.ANNOUNCEMENTS, mutedP, NOW)).toBe(Rule.ANNOUNCEMENTS);
    expect(postRule(RoomMode.OPEN, mutedP, NOW)).toBe(Rule.MUTED);
    expect(postRule(RoomMode.OPEN, participant(), NOW)).toBe(Rule.UNSPECIFIED);
    // An older server states no mode: treated as open.
    expect(postRule(RoomMode.UNSPECIFIED, participant(), NOW)).toBe(Rule.UNSPECIFIED);
  });

  it("keeps the server's rule for a user with no role, NOT_GRANTED when it gave none", () => {
    expect(postRule(RoomMode.OPEN, create(RoomAccessSchema, { postRule: Rule.REMOVED }), NOW)).toBe(Rule.REMOVED);
    expect(postRule(RoomMode.OPEN, create(RoomAccessSchema, {}), NOW)).toBe(Rule.NOT_GRANTED);
  });

  it("a timed mute counts only until its end; 0 means until lifted", () => {
    expect(isMuted(participant({ muted: true, mutedUntilMs: BigInt(NOW + 1) }), NOW)).toBe(true);
    expect(isMuted(participant({ muted: true, mutedUntilMs: BigInt(NOW) }), NOW)).toBe(false);
    expect(isMuted(participant({ muted: true, mutedUntilMs: 0n }), NOW)).toBe(true);
    expect(isMuted(participant({ muted: false, mutedUntilMs: 0n }), NOW)).toBe(false);
    const over = withPostRule(participant({ muted: true, mutedUntilMs: BigInt(NOW - 5), canPost: false, postRule: Rule.MUTED }), RoomMode.OPEN, NOW);
    expect([over.muted, over.mutedUntilMs, over.canPost, over.postRule]).toEqual([false, 0n, true, Rule.UNSPECIFIED]);
  });

  it("a mute of this user takes posting away, with the rule and the end; an unmute gives it back", () => {
    const until = BigInt(NOW + 900_000);
    const muted = applyAction(participant(), action(ActionKind.MUTE, { targetUserId: "pat", untilMs: until }), RoomMode.OPEN, "pat", NOW);
    expect([muted.muted, muted.mutedUntilMs, muted.canPost, muted.postRule]).toEqual([true, until, false, Rule.MUTED]);
    const back = applyAction(muted, action(ActionKind.UNMUTE, { targetUserId: "pat" }), RoomMode.OPEN, "pat", NOW);
    expect([back.muted, back.mutedUntilMs, back.canPost, back.postRule]).toEqual([false, 0n, true, Rule.UNSPECIFIED]);
  });

  it("a mute of someone else changes nothing for this user", () => {
    const a = applyAction(participant(), action(ActionKind.MUTE, { targetUserId: "sam" }), RoomMode.OPEN, "pat", NOW);
    expect([a.muted, a.canPost]).toEqual([false, true]);
    // and a room-wide action with no target never matches the user
    expect(concerns(action(ActionKind.SET_MODE), "")).toBe(false);
    expect(concerns(action(ActionKind.MUTE, { targetUserId: "pat" }), "pat")).toBe(true);
    expect(concerns(action(ActionKind.MUTE, { targetUserId: "sam" }), "pat")).toBe(false);
  });

  it("the room's mode decides for everyone: announcements silence participants only", () => {
    const set = action(ActionKind.SET_MODE, { mode: RoomMode.ANNOUNCEMENTS });
    const p = applyAction(participant(), set, RoomMode.ANNOUNCEMENTS, "pat", NOW);
    const o = applyAction(organizer(), set, RoomMode.ANNOUNCEMENTS, "olga", NOW);
    expect([p.canPost, p.postRule]).toEqual([false, Rule.ANNOUNCEMENTS]);
    expect([o.canPost, o.postRule]).toEqual([true, Rule.UNSPECIFIED]);
  });

  it("a membership raises the role, never lowers it; its end keeps the role", () => {
    const up = applyAction(participant(), action(ActionKind.ADD_MEMBER, { targetUserId: "pat", role: Role.ORGANIZER }), RoomMode.ANNOUNCEMENTS, "pat", NOW);
    expect([up.member, up.role, up.canPost]).toEqual([true, Role.ORGANIZER, true]);
    const same = applyAction(organizer(), action(ActionKind.ADD_MEMBER, { targetUserId: "olga", role: Role.PARTICIPANT }), RoomMode.OPEN, "olga", NOW);
    expect([same.member, same.role]).toEqual([true, Role.ORGANIZER]);
    const gone = applyAction(up, action(ActionKind.REMOVE_MEMBER, { targetUserId: "pat" }), RoomMode.OPEN, "pat", NOW);
    expect([gone.member, gone.role]).toEqual([false, Role.ORGANIZER]);
  });

  it("does not change the access it was given", () => {
    const before = participant();
    applyAction(before, action(ActionKind.MUTE, { targetUserId: "pat" }), RoomMode.OPEN, "pat", NOW);
    expect([before.muted, before.canPost]).toEqual([false, true]);
  });

  it("a room-wide action (no target) never counts as one about the user, even one with no id", () => {
    const a = applyAction(participant(), action(ActionKind.MUTE, { targetUserId: "" }), RoomMode.OPEN, "", NOW);
    expect([a.muted, a.canPost]).toEqual([false, true]);
  });
});
