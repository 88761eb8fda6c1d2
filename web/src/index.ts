// @parley/chat: the headless client plus the <parley-chat> custom element,
// which this entry registers when loaded in a browser.
export * from "./client-only.js";
export { ParleyChatElement, defineParleyChat } from "./element.js";
export type {
  ParleyChatEventDetail,
  ParleyChatEventMap,
  ParleyChatEventName,
  ParleyChatState,
  ParleyChatStateDetail,
} from "./events.js";
export { DEFAULT_STRINGS, type ParleyChatStrings, mergeStrings } from "./strings.js";
import { defineParleyChat } from "./element.js";

defineParleyChat();
