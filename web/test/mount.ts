// Mounts a <parley-chat> wired to an in-memory gateway (fakes.ts), with
// accessors into its shadow root for the element tests.
import type { ParleyChatElement } from "../src/element.js";
import { defineParleyChat } from "../src/element.js";
import { type FakeGateway, FakeNetwork } from "./fakes.js";

defineParleyChat();

export interface MountOptions {
  token?: string | null;
  room?: string;
  fetchGate?: Promise<void>;
  /** Set on the element before it is put on the page. */
  before?: (el: ParleyChatElement) => void;
}

export function mount(gw: FakeGateway, opts: MountOptions = {}) {
  const net = new FakeNetwork();
  const el = document.createElement("parley-chat") as ParleyChatElement;
  const gate = opts.fetchGate;
  el.options = {
    WebSocket: gw.WebSocket,
    fetch: gate ? async (u, i) => (await gate, gw.fetch(u, i)) : gw.fetch,
    network: net,
    backoff: { random: () => 0.5 },
  };
  el.setAttribute("room", opts.room ?? "lobby");
  el.setAttribute("gateway", "http://gw.test");
  if (opts.token !== null) el.setAttribute("token", opts.token ?? "alice");
  opts.before?.(el);
  document.body.append(el);
  const root = el.shadowRoot as ShadowRoot;
  const q = <T extends Element>(sel: string) => root.querySelector(sel) as T;
  const all = <T extends Element>(sel: string) => [...root.querySelectorAll(sel)] as T[];
  return {
    el,
    net,
    root,
    q,
    all,
    input: () => q<HTMLTextAreaElement>("[part=input]"),
    sendButton: () => q<HTMLButtonElement>("[part=send]"),
    form: () => q<HTMLFormElement>("[part=composer]"),
    composerError: () => q<HTMLElement>("[part=composer-error]"),
    log: () => q<HTMLElement>("[part=log]"),
    older: () => q<HTMLButtonElement>("[part=load-older]"),
    items: () => all<HTMLElement>("li[data-seq]"),
    pendingItems: () => all<HTMLElement>("li[data-pending=true]"),
    pendingList: () => q<HTMLElement>("[part=pending]"),
    status: () => q<HTMLElement>("[part=status]"),
    announcer: () => q<HTMLElement>("[part=announcer]"),
    /** Types `text` and submits the composer as the user would. */
    type: (text: string) => {
      const input = q<HTMLTextAreaElement>("[part=input]");
      input.value = text;
      input.dispatchEvent(new Event("input", { bubbles: true }));
      q<HTMLFormElement>("[part=composer]").dispatchEvent(new Event("submit", { cancelable: true }));
    },
  };
}

/** Gives the log a layout: every row (message or separator) is `rowPx` high. */
export function fakeLayout(log: HTMLElement, rowPx = 20, viewPx = 100): void {
  const rows = () => log.querySelectorAll("li").length;
  Object.defineProperty(log, "scrollHeight", { get: () => rows() * rowPx, configurable: true });
  Object.defineProperty(log, "clientHeight", { get: () => viewPx, configurable: true });
}
