// pages: what the browser tests read from and do to a page that shows one
// <parley-chat>: a recorder installed before any page script runs (state
// changes, history pages, message events, every WebSocket opened and
// closed, with times), typing into the composer, and the rendered messages.
import assert from "node:assert/strict";
import { waitFor } from "./harness.mjs";

/**
 * Runs in every page before its own scripts (context.addInitScript). The
 * element's events bubble out of its shadow root, so document sees them.
 */
export function recorder() {
  window.__states = [];
  window.__history = [];
  window.__messages = [];
  window.__ws = [];
  document.addEventListener("parley-state", (e) => {
    const d = e.detail;
    window.__states.push({ state: d.state, reason: d.reason ?? "", retryInMs: d.retryInMs ?? null, at: Date.now() });
  });
  document.addEventListener("parley-history", (e) => {
    window.__history.push({ count: e.detail.messages.length, at: Date.now() });
  });
  document.addEventListener("parley-message", (e) => {
    const m = e.detail.message;
    window.__messages.push({ seq: Number(m.seq), body: m.body, replay: e.detail.replay, at: Date.now() });
  });
  // Every WebSocket the page opens: when it was created and when it closed.
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      const rec = { url: String(url), openedAt: Date.now(), closedAt: null, code: null };
      window.__ws.push(rec);
      this.addEventListener("close", (ev) => {
        rec.closedAt = Date.now();
        rec.code = ev.code;
      });
    }
  };
}

/** Types a message and presses Enter; true when the element took it (it
 * clears the input), false when the composer was disabled meanwhile. */
export async function say(page, text) {
  const input = page.locator("parley-chat [part=input]");
  await input.fill(text);
  await input.press("Enter");
  const taken = (await input.inputValue()) === "";
  if (!taken) await input.evaluate((el) => (el.value = ""));
  return taken;
}

/** The stored messages the element shows, in DOM order. */
export function items(page) {
  return page.evaluate(() =>
    [...document.querySelector("parley-chat").shadowRoot.querySelectorAll("li[data-seq]")].map((li) => ({
      seq: Number(li.dataset.seq),
      body: li.querySelector("[part=body]").textContent,
      clientMsgId: li.dataset.clientMsgId,
      pending: li.dataset.pending,
      deleted: li.hasAttribute("data-deleted"),
    })),
  );
}

export function pendingItems(page) {
  return page.evaluate(() =>
    [...document.querySelector("parley-chat").shadowRoot.querySelectorAll("li[data-pending=true]")].map((li) => ({
      body: li.querySelector("[part=body]").textContent,
      clientMsgId: li.dataset.clientMsgId,
    })),
  );
}

export function composerDisabled(page) {
  return page.evaluate(() => {
    const r = document.querySelector("parley-chat").shadowRoot;
    return r.querySelector("[part=input]").disabled && r.querySelector("[part=send]").disabled;
  });
}

export async function waitReady(page, timeout) {
  await page.waitForSelector("parley-chat[data-ready]", { timeout });
}

export async function waitNotReady(page, timeout) {
  await page.waitForFunction(() => !document.querySelector("parley-chat").hasAttribute("data-ready"), null, {
    timeout,
  });
}

export async function firstStateAfter(page, t, pred) {
  const states = await page.evaluate(() => window.__states);
  return states.find((s) => s.at >= t && pred(s));
}

/**
 * The first WebSocket closed at or after `t`, and the next one the page
 * opened after that close: how long the client waited before retrying.
 */
export async function retryGapAfter(page, t) {
  const ws = await page.evaluate(() => window.__ws);
  const i = ws.findIndex((w) => w.closedAt !== null && w.closedAt >= t);
  assert.ok(i >= 0, `a WebSocket closed after the cut (${JSON.stringify(ws)})`);
  const next = ws.slice(i + 1).find((w) => w.openedAt >= ws[i].closedAt);
  assert.ok(next, `a WebSocket opened after the close (${JSON.stringify(ws)})`);
  return { gapMs: next.openedAt - ws[i].closedAt, closed: ws[i], next };
}

/**
 * Waits until every page shows exactly what the server stored: same seqs,
 * same bodies, in seq order, nothing pending, nothing twice. Returns the
 * server's list. `stored()` reads the server (the gateway's REST API).
 */
export async function converged(pages, stored, timeoutMs = 30_000) {
  let server = [];
  let lastDiff = "";
  await waitFor(
    async () => {
      server = await stored();
      for (const page of pages) {
        const shown = await items(page);
        const pending = await pendingItems(page);
        // A deleted message shows a placeholder; the server keeps a tombstone.
        const a = JSON.stringify(shown.map((m) => [m.seq, m.deleted ? null : m.body]));
        const b = JSON.stringify(server.map((m) => [m.seq, m.deleted ? null : m.body]));
        if (a !== b || pending.length > 0) {
          lastDiff = `page ${a.slice(-300)} vs server ${b.slice(-300)}, pending ${pending.length}`;
          return false;
        }
      }
      return true;
    },
    timeoutMs,
    "pages to match the server",
    250,
  ).catch((e) => {
    throw new Error(`${e.message}\n${lastDiff}`);
  });
  server.forEach((m, i) => assert.equal(m.seq, server[0].seq + i, "seqs are dense and ordered"));
  return server;
}
