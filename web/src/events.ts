// events: the custom events <parley-chat> dispatches, with their detail types.
// Added to HTMLElementEventMap (and DocumentEventMap, since they bubble and
// are composed), so `el.addEventListener("parley-message", (e) => e.detail...)`
// is typed for TypeScript users without casts.
import type { ConnectionState, ParleyEvents, StateEvent } from "./client.js";

/** The element's states: the client's, plus 'idle' before it has a room and a token. */
export type ParleyChatState = ConnectionState | "idle";

export interface ParleyChatStateDetail extends Omit<StateEvent, "state" | "previous"> {
  state: ParleyChatState;
  previous: ParleyChatState;
}

/** Every event the element fires, by name. */
export interface ParleyChatEventMap {
  "parley-state": CustomEvent<ParleyChatStateDetail>;
  "parley-history": CustomEvent<ParleyEvents["history"]>;
  "parley-message": CustomEvent<ParleyEvents["message"]>;
  "parley-edit": CustomEvent<ParleyEvents["edit"]>;
  "parley-delete": CustomEvent<ParleyEvents["delete"]>;
  "parley-ack": CustomEvent<ParleyEvents["ack"]>;
  "parley-send-error": CustomEvent<ParleyEvents["send-error"]>;
  "parley-error": CustomEvent<ParleyEvents["error"]>;
  "parley-auth-error": CustomEvent<ParleyEvents["auth-error"]>;
  /** What the user may do in the room changed (canPost, postRule, role). */
  "parley-access": CustomEvent<ParleyEvents["access"]>;
  /** A room action (moderation, mode, settings), live. */
  "parley-room-event": CustomEvent<ParleyEvents["room-event"]>;
  "parley-presence": CustomEvent<ParleyEvents["presence"]>;
  "parley-typing": CustomEvent<ParleyEvents["typing"]>;
}

export type ParleyChatEventName = keyof ParleyChatEventMap;

/** The detail of one of the element's events. */
export type ParleyChatEventDetail<K extends ParleyChatEventName> =
  ParleyChatEventMap[K] extends CustomEvent<infer D> ? D : never;

declare global {
  interface HTMLElementEventMap extends ParleyChatEventMap {}
  interface DocumentEventMap extends ParleyChatEventMap {}
}
