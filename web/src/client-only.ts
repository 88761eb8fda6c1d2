// The headless entry (`@parley/chat/client`): the client and its building
// blocks, with no DOM and no custom element registration.
export { Backoff, type BackoffOptions } from "./backoff.js";
export { type Clock, systemClock } from "./clock.js";
export {
  type AuthErrorCode,
  type ConnectOptions,
  type ConnectionState,
  type ParleyEvents,
  type PresenceInfo,
  type StateEvent,
  ParleyClient,
  connect,
  gatewayEndpoints,
} from "./client.js";
export { DEFAULT_LIMITS, type Limits, type SendProblem, checkBody, utf8Length } from "./limits.js";
export { Pacer, type FramePriority, type PacerOptions } from "./pacer.js";
export {
  AuthFailure,
  type AuthFailureReason,
  type TokenProvider,
  type TokenReason,
  type TokenRequest,
  TokenSource,
} from "./token-source.js";
export { Heartbeat, type HeartbeatOptions } from "./heartbeat.js";
export { HistoryClient, HttpError, type FetchLike, type CatchUpResult, type ListOptions } from "./history.js";
export { ModerateAction, type ModerateOptions, RoomsApi } from "./moderation.js";
export { applyAction, isMuted, postRule, withPostRule } from "./room-access.js";
export { TypingTracker } from "./typing.js";
export { Outbox, type Pending, newClientMsgId } from "./outbox.js";
export { RoomState, type Change, type ChangeKind } from "./room-state.js";
export { Transport, type WebSocketConstructor, type WebSocketLike } from "./transport.js";
export * from "./constants.js";
export * as proto from "./protocol.js";
