// room-access: what the signed-in user may do in one room, kept up to date
// between the server's answers. The server is the authority: every Room it
// sends to this user (a history page, Subscribed) carries `me`, the core's
// own view (role, can_post and the rule that refuses posting, mute). A live
// RoomEvent carries the room's settings but no `me`, so the actions that
// change this user's standing (a mute or unmute of them, a membership, a
// mode change) are applied here with the core's own order of write rules
// (src/core/access.c, access_write): closed, then organizers may, then
// announcements, then muted. The next Room from the server replaces it all.
import { create } from "@bufbuild/protobuf";
import {
  ActionKind,
  type ModerationAction,
  type RoomAccess,
  RoomAccessSchema,
  RoomMode,
  Role,
  Rule,
} from "./gen/parley/v1/message_pb.js";

/** Why the user may not post in a room of `mode` (Rule.UNSPECIFIED: they may). */
export function postRule(mode: RoomMode, access: RoomAccess, nowMs: number): Rule {
  if (access.role === Role.UNSPECIFIED) return access.postRule || Rule.NOT_GRANTED;
  if (mode === RoomMode.CLOSED) return Rule.ROOM_CLOSED;
  if (access.role === Role.ORGANIZER) return Rule.UNSPECIFIED;
  if (mode === RoomMode.ANNOUNCEMENTS) return Rule.ANNOUNCEMENTS;
  if (isMuted(access, nowMs)) return Rule.MUTED;
  return Rule.UNSPECIFIED;
}

/** Muted now: until lifted (muted_until_ms 0) or until a time still ahead. */
export function isMuted(access: RoomAccess, nowMs: number): boolean {
  return access.muted && (access.mutedUntilMs === 0n || Number(access.mutedUntilMs) > nowMs);
}

/** `access` with can_post and post_rule recomputed for a room of `mode`. */
export function withPostRule(access: RoomAccess, mode: RoomMode, nowMs: number): RoomAccess {
  const rule = postRule(mode, access, nowMs);
  const muted = isMuted(access, nowMs);
  return create(RoomAccessSchema, {
    ...access,
    muted,
    mutedUntilMs: muted ? access.mutedUntilMs : 0n,
    canPost: rule === Rule.UNSPECIFIED,
    postRule: rule,
  });
}

/**
 * The user's access after `action` in a room now in `mode`; `userId` is the
 * signed-in user. Actions about someone else change only what the mode
 * changes.
 */
export function applyAction(
  access: RoomAccess,
  action: ModerationAction,
  mode: RoomMode,
  userId: string,
  nowMs: number,
): RoomAccess {
  const next = create(RoomAccessSchema, { ...access });
  if (action.targetUserId !== "" && action.targetUserId === userId) {
    switch (action.kind) {
      case ActionKind.MUTE:
        next.muted = true;
        next.mutedUntilMs = action.untilMs;
        break;
      case ActionKind.UNMUTE:
        next.muted = false;
        next.mutedUntilMs = 0n;
        break;
      case ActionKind.ADD_MEMBER:
        next.member = true;
        if (action.role > next.role) next.role = action.role;
        break;
      case ActionKind.REMOVE_MEMBER:
        next.member = false;
        break;
      default:
        break;
    }
  }
  return withPostRule(next, mode, nowMs);
}

/** A room action names this user (a mute, a removal, a membership of theirs). */
export function concerns(action: ModerationAction, userId: string): boolean {
  return action.targetUserId !== "" && action.targetUserId === userId;
}
