// Browser end-to-end tests of <parley-chat>: Debian's Chromium (driven by
// playwright-core) on the demo page, against the real parleyd and
// parley-gateway. Alice reaches the gateway through a proxy the test can
// black-hole or reset; Bob connects directly and keeps sending.
//
//   PARLEYD=path/to/parleyd PARLEY_GATEWAY=path/to/parley-gateway \
//     node --test tests/browser/chat.e2e.test.mjs
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { CutProxy } from "./cut-proxy.mjs";
import {
  CHROMIUM_ARGS,
  Core,
  Gateway,
  buildWeb,
  mintToken,
  newSecret,
  postAs as postAsUser,
  removeDir,
  repoRoot,
  sleep,
  tempDir,
  waitFor,
} from "./harness.mjs";
import {
  composerDisabled,
  converged as pagesConverged,
  firstStateAfter,
  items,
  pendingItems,
  recorder,
  retryGapAfter,
  say,
} from "./pages.mjs";

const PARLEYD = process.env.PARLEYD;
const GATEWAY = process.env.PARLEY_GATEWAY;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = join(repoRoot, "tests/artifacts");
// Heartbeat: a ping every 5 s, 5 s to answer: a dead link is noticed at most
// 10 s after it died. One more second for timer slack on a busy machine.
const DETECT_MS = 11_000;
const ROOM = "lobby";
const SHOTS = ["chat-connected.png", "chat-disconnected.png", "chat-core-down.png"];
// A retry "at once" is a timer of 0 ms; leave room for a busy machine, far
// below the first backoff step a delayed retry would take (up to 500 ms).
const IMMEDIATE_MS = 150;
const runStartedAt = Date.now();

if (!PARLEYD || !GATEWAY) {
  console.error("set PARLEYD and PARLEY_GATEWAY to the built binaries");
  process.exit(2);
}

let dir, www, logDir, secret, core, gw, proxy, ctx, alice, bob, checker;
const sent = []; // every body Bob's loop typed, in order
const loops = new Set(); // running send loops, stopped in after() even on failure

describe("parley-chat in Chromium against parleyd + parley-gateway", { timeout: 420_000 }, () => {
  before(async () => {
    dir = tempDir();
    logDir = join(dir, "logs");
    mkdirSync(logDir);
    mkdirSync(ARTIFACTS, { recursive: true });
    // Screenshots of an earlier run must not pass for this one's.
    for (const f of SHOTS) rmSync(join(ARTIFACTS, f), { force: true });
    secret = newSecret();
    checker = mintToken(secret, "checker", "Checker");
    www = join(dir, "www");
    buildWeb(www);
    core = new Core({ bin: PARLEYD, dir, secret, logDir });
    await core.start();
    gw = new Gateway({ bin: GATEWAY, dir, secret, logDir, upstream: core.sock, www });
    await gw.start();
    proxy = new CutProxy(gw.port);
    await proxy.listen();
    ctx = await chromium.launchPersistentContext(join(dir, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      args: CHROMIUM_ARGS,
    });
    ctx.setDefaultTimeout(30_000);
    // Record every state change, history page, message and WebSocket with
    // the time it happened.
    await ctx.addInitScript(recorder);
    alice = await ctx.newPage();
    bob = await ctx.newPage();
  });

  after(async () => {
    for (const l of loops) await l.stop().catch(() => {});
    await ctx?.close().catch(() => {});
    await proxy?.close().catch(() => {});
    await gw?.stop().catch(() => {});
    await core?.stop().catch(() => {});
    if (process.env.KEEP_E2E_DIR) console.log(`kept ${dir}`);
    else if (dir) removeDir(dir);
  });

  test("two users chat; history first, then live", async () => {
    // History written before anyone opens the page.
    await postAs("carol", "Carol", ["welcome 1", "welcome 2"]);
    await open(alice, `http://127.0.0.1:${proxy.port}`, "Alice", "alice");
    // Bob speaks the JSON subprotocol, Alice binary protobuf.
    await open(bob, gw.url, "Bob", "bob", "json");
    assert.deepEqual(
      (await items(alice)).map((m) => m.body),
      ["welcome 1", "welcome 2"],
      "history shown",
    );
    const { states, history } = await alice.evaluate(() => ({ states: window.__states, history: window.__history }));
    const live = states.find((x) => x.state === "live");
    assert.ok(history.length >= 1 && history[0].count === 2, "one history page with the two messages");
    assert.ok(live && history[0].at <= live.at, "history rendered before the chat went live");
    assert.ok(await say(bob, "hi alice"));
    await waitFor(async () => (await items(alice)).some((m) => m.body === "hi alice"), 10_000, "alice to see bob");
    assert.ok(await say(alice, "hi bob"));
    await waitFor(async () => (await items(bob)).some((m) => m.body === "hi bob"), 10_000, "bob to see alice");
    await converged([alice, bob]);
    await shot(alice, "chat-connected.png");
  });

  test("network black hole: disabled within the detection time, catch-up, nothing lost or doubled", async (t) => {
    const loop = keepSending(bob, "cut");
    await sleep(1000);
    proxy.cut("drop");
    const cutAt = Date.now();
    // Sent after the cut but before the client can know: it must survive.
    assert.ok(await say(alice, "sent into the void"), "composer still enabled right after the cut");
    const [voidMsg] = await pendingItems(alice);
    assert.ok(voidMsg?.clientMsgId, "the message shows as pending");

    await alice.waitForFunction(() => !document.querySelector("parley-chat").hasAttribute("data-ready"), null, {
      timeout: DETECT_MS + 5000,
    });
    const off = await firstStateAfter(alice, cutAt, (s) => s.state !== "live");
    assert.ok(off, "a state change was recorded");
    assert.ok(off.at - cutAt <= DETECT_MS, `noticed after ${off.at - cutAt} ms (limit ${DETECT_MS})`);
    assert.match(off.reason, /heartbeat/, "noticed by the heartbeat, not by TCP");
    t.diagnostic(`black hole noticed after ${off.at - cutAt} ms`);
    assert.equal(await composerDisabled(alice), true, "composer disabled while offline");
    await shot(alice, "chat-disconnected.png");

    // The server never got it while the link was dead.
    assert.equal((await gw.messages(ROOM, checker)).filter((m) => m.clientMsgId === voidMsg.clientMsgId).length, 0);
    await sleep(3000); // Bob keeps talking meanwhile
    proxy.heal();
    await alice.waitForSelector("parley-chat[data-ready]", { timeout: 45_000 });
    assert.equal(await composerDisabled(alice), false, "composer enabled after catch-up");
    const states = (await alice.evaluate(() => window.__states)).filter((s) => s.at >= cutAt).map((s) => s.state);
    assert.ok(states.includes("catching-up"), `caught up before going live: ${states.join(" → ")}`);
    assert.equal(states[states.length - 1], "live");
    await sleep(1500);
    await loop.stop();

    const server = await converged([alice, bob]);
    const stored = server.filter((m) => m.clientMsgId === voidMsg.clientMsgId);
    assert.equal(stored.length, 1, "stored exactly once");
    assert.equal(stored[0].body, "sent into the void");
    assert.equal(stored[0].author, "alice");
    assert.ok(loop.bodies.length >= 5, `bob kept sending (${loop.bodies.length})`);
  });

  test("parleyd killed and restarted on the same database while Bob keeps sending", async (t) => {
    const loop = keepSending(bob, "core");
    await sleep(1200);
    await core.kill();
    const killedAt = Date.now();
    await alice.waitForFunction(() => !document.querySelector("parley-chat").hasAttribute("data-ready"), null, {
      timeout: DETECT_MS + 5000,
    });
    const off = await firstStateAfter(alice, killedAt, (s) => s.state !== "live");
    assert.ok(off && off.at - killedAt <= DETECT_MS, `noticed after ${off && off.at - killedAt} ms`);
    t.diagnostic(`core loss noticed after ${off.at - killedAt} ms (${off.reason})`);
    assert.equal(await composerDisabled(alice), true);
    await shot(alice, "chat-core-down.png");
    await sleep(3000);
    await core.start();
    const restartedAt = Date.now();
    await alice.waitForSelector("parley-chat[data-ready]", { timeout: 60_000 });
    await bob.waitForSelector("parley-chat[data-ready]", { timeout: 60_000 });
    t.diagnostic(`live again ${Date.now() - restartedAt} ms after parleyd was back`);
    await sleep(2000); // Bob sends a few more after the restart
    await loop.stop();
    const server = await converged([alice, bob]);
    assert.ok(server.some((m) => m.body.startsWith("core ")), "Bob's messages were stored");
  });

  test("one-way loss (acks lost, publish arrives): stored once, shown once, no longer pending", async () => {
    proxy.cut("deaf");
    const cutAt = Date.now();
    assert.ok(await say(alice, "does this arrive?"));
    const [p] = await pendingItems(alice);
    assert.ok(p?.clientMsgId);
    await waitFor(
      async () => (await gw.messages(ROOM, checker)).some((m) => m.clientMsgId === p.clientMsgId),
      10_000,
      "the publish to be stored",
    );
    assert.equal((await pendingItems(alice)).length, 1, "no ack came back: still pending");
    await alice.waitForFunction(() => !document.querySelector("parley-chat").hasAttribute("data-ready"), null, {
      timeout: DETECT_MS + 5000,
    });
    const off = await firstStateAfter(alice, cutAt, (s) => s.state !== "live");
    assert.ok(off.at - cutAt <= DETECT_MS);
    proxy.heal();
    await alice.waitForSelector("parley-chat[data-ready]", { timeout: 45_000 });
    const server = await converged([alice, bob]);
    assert.equal(server.filter((m) => m.clientMsgId === p.clientMsgId).length, 1);
  });

  test("connections reset: the first retry is immediate", async (t) => {
    const t0 = Date.now();
    proxy.reset();
    // The reset is seen at once (no heartbeat wait), as a close.
    const off = await waitFor(() => firstStateAfter(alice, t0, (x) => x.state === "offline"), 5000, "alice offline");
    assert.ok(off.at - t0 < 2000, `offline ${off.at - t0} ms after the reset`);
    assert.equal(off.retryInMs, 0, "the first retry is scheduled with no delay");
    await alice.waitForSelector("parley-chat[data-ready]", { timeout: 10_000 });
    // ... and really went out at once: the page opened its next WebSocket
    // right after the old one closed.
    const { gapMs } = await retryGapAfter(alice, t0);
    t.diagnostic(`next WebSocket ${gapMs} ms after the close`);
    assert.ok(gapMs <= IMMEDIATE_MS, `next WebSocket ${gapMs} ms after the close (limit ${IMMEDIATE_MS})`);
    assert.ok(await say(bob, "after the reset"));
    await converged([alice, bob]);
  });

  test("the browser's offline event disables at once; online retries at once", async (t) => {
    const cdp = await ctx.newCDPSession(alice); // network emulation for Alice's page only
    const conditions = (offline) => ({ offline, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    await cdp.send("Network.enable");
    const offAt = Date.now();
    await cdp.send("Network.emulateNetworkConditions", conditions(true));
    await alice.waitForFunction(() => !document.querySelector("parley-chat").hasAttribute("data-ready"), null, {
      timeout: 3000,
    });
    const off = await firstStateAfter(alice, offAt, (s) => s.state === "offline");
    assert.ok(off, "went offline");
    assert.match(off.reason, /browser offline/);
    assert.ok(off.at - offAt < 2000, `offline after ${off.at - offAt} ms`);
    assert.ok(await say(bob, "while alice is offline 1"));
    assert.ok(await say(bob, "while alice is offline 2"));
    await sleep(6000); // several failed attempts: the backoff has grown
    const onAt = Date.now();
    await cdp.send("Network.emulateNetworkConditions", conditions(false));
    await alice.waitForSelector("parley-chat[data-ready]", { timeout: 10_000 });
    t.diagnostic(`live again ${Date.now() - onAt} ms after the online event`);
    assert.ok(Date.now() - onAt < 5000, "the online event retried without waiting for the backoff");
    await converged([alice, bob]);
    await cdp.detach();
  });

  test("closing the chat closes its WebSocket", async () => {
    await waitFor(() => proxy.openWebSockets === 1, 5000, "alice's one WebSocket through the proxy");
    assert.equal(await bob.evaluate(() => document.querySelector("parley-chat").getAttribute("format")), "json");
    await alice.evaluate(() => document.querySelector("parley-chat").remove());
    await waitFor(() => proxy.openWebSockets === 0, 5000, "the WebSocket to close");
  });

  test("the servers shut down cleanly, with no sanitizer report", async () => {
    await ctx.close();
    ctx = null;
    const g = await gw.stopped();
    const c = await core.stopped();
    assert.deepEqual(g, { code: 0, signal: null }, "parley-gateway exit");
    assert.deepEqual(c, { code: 0, signal: null }, "parleyd exit");
    for (const f of ["parley-gateway.log", "parleyd.log"]) {
      const log = readFileSync(join(logDir, f), "utf8");
      assert.doesNotMatch(log, /AddressSanitizer|LeakSanitizer|runtime error:/, `${f} has a sanitizer report`);
    }
  });

  test("screenshots of the connected and disconnected states were written by this run", () => {
    for (const f of SHOTS) {
      const st = statSync(join(ARTIFACTS, f));
      assert.ok(st.size > 1000, `${f} is ${st.size} bytes`);
      assert.ok(st.mtimeMs >= runStartedAt - 1000, `${f} is older than this run`);
    }
  });
});

// ---- helpers ---------------------------------------------------------------

async function open(page, base, name, user, format = "proto") {
  await page.goto(`${base}/?name=${encodeURIComponent(name)}&user=${user}&room=${ROOM}&format=${format}`);
  await page.waitForSelector("parley-chat[data-ready]", { timeout: 30_000 });
}

async function shot(page, name) {
  await page.locator("parley-chat").screenshot({ path: join(ARTIFACTS, name) });
}

/** Bob types a numbered message every 300 ms whenever his composer is enabled. */
function keepSending(page, prefix) {
  let running = true;
  const bodies = [];
  const done = (async () => {
    let n = 0;
    while (running) {
      const ready = await page.evaluate(() => document.querySelector("parley-chat").hasAttribute("data-ready"));
      if (ready && running) {
        const body = `${prefix} ${++n}`;
        if (await say(page, body)) {
          bodies.push(body);
          sent.push(body);
        }
      }
      await sleep(300);
    }
  })();
  const loop = {
    bodies,
    async stop() {
      running = false;
      loops.delete(loop);
      await done;
    },
  };
  // A failing page ends the loop; stop() reports the error to the test.
  done.catch(() => {
    running = false;
  });
  loops.add(loop);
  return loop;
}

/**
 * Waits until every page shows exactly what the server stored (seq order,
 * nothing pending, nothing twice), and checks that each body Bob's loops
 * typed was stored once. Returns the server's list.
 */
async function converged(pages) {
  const server = await pagesConverged(pages, () => gw.messages(ROOM, checker));
  const bodies = server.map((m) => m.body);
  assert.equal(new Set(bodies).size, bodies.length, "no message stored twice");
  for (const b of sent) assert.equal(bodies.filter((x) => x === b).length, 1, `"${b}" stored once`);
  return server;
}

/** Messages written before the pages open, by another user (headless client). */
function postAs(user, name, bodies) {
  return postAsUser({ www, gatewayUrl: gw.url, token: mintToken(secret, user, name), room: ROOM, bodies });
}
