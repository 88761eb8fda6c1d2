// moderation: the room calls of the gateway's REST API that a chat user
// makes besides reading messages: an organizer's moderation (mute, unmute,
// remove, readmit a user), a room's mode (open, announcements, closed), the
// room as the core shows it to this user (`me`), and marking messages read.
// Each call runs with the user's own token, so the core decides it as that
// user; a refusal is an HttpError naming the rule (e.g. ORGANIZER_ONLY).
// Routes and bodies: docs/gateway.md, "REST".
import { create, fromJson, toJsonString } from "@bufbuild/protobuf";
import { type ModerationAction, type Room, type RoomMode, RoomSchema } from "./gen/parley/v1/message_pb.js";
import {
  type MarkReadResponse,
  MarkReadRequestSchema,
  MarkReadResponseSchema,
  ModerateAction,
  ModerateRequestSchema,
  ModerateResponseSchema,
  UpdateRoomRequestSchema,
  UpdateRoomResponseSchema,
} from "./gen/parley/v1/rooms_pb.js";
import type { HistoryClient } from "./history.js";

export { ModerateAction };

/** An organizer's action on a user (docs/api.md, "Moderation"). */
export interface ModerateOptions {
  /** MUTE and REMOVE: for how long, in ms; 0 or left out: until lifted. */
  durationMs?: number;
  /** Stored with the action and shown to the room. */
  reason?: string;
}

const PARSE = { ignoreUnknownFields: true } as const;

function roomPath(room: string, rest = ""): string {
  return `v1/rooms/${encodeURIComponent(room)}${rest}`;
}

export class RoomsApi {
  private readonly http: HistoryClient;

  constructor(http: HistoryClient) {
    this.http = http;
  }

  /** GET /v1/rooms/{room}: the room with `me`, the user's own access. */
  async room(room: string): Promise<Room> {
    return fromJson(RoomSchema, await this.http.request("GET", roomPath(room)), PARSE);
  }

  /** POST /v1/rooms/{room}/moderation: the stored action. */
  async moderate(room: string, userId: string, action: ModerateAction, opts: ModerateOptions = {}): Promise<ModerationAction | undefined> {
    const req = create(ModerateRequestSchema, {
      userId,
      action,
      durationMs: BigInt(Math.max(0, Math.floor(opts.durationMs ?? 0))),
      reason: opts.reason ?? "",
    });
    const json = await this.http.request("POST", roomPath(room, "/moderation"), toJsonString(ModerateRequestSchema, req));
    return fromJson(ModerateResponseSchema, json, PARSE).action;
  }

  /** PATCH /v1/rooms/{room} with only the mode: the room after it. */
  async setMode(room: string, mode: RoomMode): Promise<Room | undefined> {
    const req = create(UpdateRoomRequestSchema, { mode });
    const json = await this.http.request("PATCH", roomPath(room), toJsonString(UpdateRoomRequestSchema, req));
    return fromJson(UpdateRoomResponseSchema, json, PARSE).room;
  }

  /** POST /v1/rooms/{room}/read: read up to message `seq` at room rev `rev`. */
  async markRead(room: string, seq: bigint, rev: bigint): Promise<MarkReadResponse> {
    const req = create(MarkReadRequestSchema, { seq, rev });
    const json = await this.http.request("POST", roomPath(room, "/read"), toJsonString(MarkReadRequestSchema, req));
    return fromJson(MarkReadResponseSchema, json, PARSE);
  }
}
