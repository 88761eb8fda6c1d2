// @parley/chat: the headless client plus the <parley-chat> custom element,
// which this entry registers when loaded in a browser.
export * from "./client-only.js";
export { ParleyChatElement, type ParleyChatState, defineParleyChat } from "./element.js";
import { defineParleyChat } from "./element.js";

defineParleyChat();
