// Cross-origin browser tests: the two example frontends, each built with its
// own `npm run build` and served from an origin of its own, embed
// <parley-chat> (installed as the @parley/chat package) and talk to the real
// parley-gateway and parleyd on yet another origin, as an event platform
// deploys them:
//
//   Organizer app (React)       http://localhost:<port A>   via proxy A
//   Participation app (Vue)     http://127.0.0.1:<port B>   via proxy B
//   plain pages with the script-tag embeds (module and classic)
//   a page on an origin the gateway does not allow
//   parley-gateway              http://127.0.0.1:<port G>   --origin A, B, embeds
//
// Each app reaches the gateway through a TCP proxy the test can black-hole
// or reset, so a cut in either app can be made alone.
//
//   PARLEYD=path/to/parleyd PARLEY_GATEWAY=path/to/parley-gateway \
//     node --test tests/browser/embed.e2e.test.mjs
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium } from "playwright-core";
import { CutProxy } from "./cut-proxy.mjs";
import {
  CHROMIUM_ARGS,
  Core,
  Gateway,
  buildExample,
  buildPackage,
  buildWeb,
  mintToken,
  newSecret,
  postAs,
  removeDir,
  repoRoot,
  serveStatic,
  sleep,
  tempDir,
  waitFor,
} from "./harness.mjs";
import {
  composerDisabled,
  converged as pagesConverged,
  firstStateAfter,
  items,
  recorder,
  retryGapAfter,
  say,
  waitNotReady,
  waitReady,
} from "./pages.mjs";

const PARLEYD = process.env.PARLEYD;
const GATEWAY = process.env.PARLEY_GATEWAY;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARTIFACTS = join(repoRoot, "tests/artifacts");
const SHOTS = ["embed-organizer.png", "embed-participant.png"];
// A dead link is noticed within ping interval + pong timeout (5 s + 5 s).
const DETECT_MS = 11_000;
// A retry "at once" is a 0 ms timer; far below a first backoff step (<= 500 ms).
const IMMEDIATE_MS = 150;
const ROOM = "lobby";
const runStartedAt = Date.now();

if (!PARLEYD || !GATEWAY) {
  console.error("set PARLEYD and PARLEY_GATEWAY to the built binaries");
  process.exit(2);
}

let dir, logDir, www, secret, checker, core, gw, ctx;
let sites = []; // static servers, closed in after()
let proxies = {}; // organizer, participant
let origins = {}; // organizer, participant, embed, refused, refusedApp
let olga, pat; // the organizer's and the participant's pages
const dialogs = []; // any alert() a page raised (markup must never run)

describe("the example apps on their own origins, with the gateway on another", { timeout: 480_000 }, () => {
  before(async () => {
    dir = tempDir("parley-embed-");
    logDir = join(dir, "logs");
    mkdirSync(logDir);
    mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of SHOTS) rmSync(join(ARTIFACTS, f), { force: true });
    secret = newSecret();
    checker = mintToken(secret, "checker", "Checker");

    // What the gateway serves (bundles), the package the apps install, the apps.
    www = join(dir, "www");
    buildWeb(www);
    buildPackage();
    buildExample("organizer-react", join(dir, "organizer"));
    buildExample("participant-vue", join(dir, "participant"));

    // Four origins of their own. localhost and 127.0.0.1 are different
    // origins (and sites) for the browser, as two real domains would be.
    const organizerSite = await serveStatic(join(dir, "organizer"));
    const participantSite = await serveStatic(join(dir, "participant"));
    mkdirSync(join(dir, "embed"));
    writeFileSync(join(dir, "embed", "index.html"), "<!doctype html><title>embed</title>");
    const embedSite = await serveStatic(join(dir, "embed"));
    const refusedSite = await serveStatic(join(dir, "embed"));
    const refusedAppSite = await serveStatic(join(dir, "participant"));
    sites = [organizerSite, participantSite, embedSite, refusedSite, refusedAppSite];
    origins = {
      organizer: `http://localhost:${organizerSite.port}`,
      participant: `http://127.0.0.1:${participantSite.port}`,
      embed: `http://localhost:${embedSite.port}`,
      refused: `http://127.0.0.1:${refusedSite.port}`,
      refusedApp: `http://localhost:${refusedAppSite.port}`,
    };

    core = new Core({ bin: PARLEYD, dir, secret, logDir });
    await core.start();
    // Only the three app origins; not the defaults (every local port).
    gw = new Gateway({
      bin: GATEWAY,
      dir,
      secret,
      logDir,
      upstream: core.sock,
      www,
      args: ["--origin", origins.organizer, "--origin", origins.participant, "--origin", origins.embed],
    });
    await gw.start();
    proxies = { organizer: new CutProxy(gw.port), participant: new CutProxy(gw.port) };
    await proxies.organizer.listen();
    await proxies.participant.listen();

    ctx = await chromium.launchPersistentContext(join(dir, "chromium-profile"), {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 60_000,
      args: CHROMIUM_ARGS,
    });
    ctx.setDefaultTimeout(30_000);
    await ctx.addInitScript(recorder);
    ctx.on("page", (p) => p.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    }));
    olga = await ctx.newPage();
    pat = await ctx.newPage();
  });

  after(async () => {
    await ctx?.close().catch(() => {});
    for (const p of Object.values(proxies)) await p.close().catch(() => {});
    for (const s of sites) await s.close().catch(() => {});
    await gw?.stop().catch(() => {});
    await core?.stop().catch(() => {});
    if (process.env.KEEP_E2E_DIR) console.log(`kept ${dir}`);
    else if (dir) removeDir(dir);
  });

  test("organizer (React, localhost) and participant (Vue, 127.0.0.1) chat in one room, history first", async () => {
    await postAs({ www, gatewayUrl: gw.url, token: mintToken(secret, "carol", "Carol"), room: ROOM, bodies: ["welcome 1", "welcome 2"] });
    await olga.goto(appUrl("organizer", { name: "Olga", user: "olga", room: ROOM }));
    await waitReady(olga, 30_000);
    await pat.goto(appUrl("participant", { name: "Pat", user: "pat", room: ROOM }));
    await waitReady(pat, 30_000);

    // Really three origins: two apps and the gateway (through its proxies).
    const seen = [await olga.evaluate(() => location.origin), await pat.evaluate(() => location.origin)];
    assert.deepEqual(seen, [origins.organizer, origins.participant]);
    assert.equal(await olga.locator("[data-testid=who]").innerText(), "Olga (organizer)");

    for (const page of [olga, pat]) {
      assert.deepEqual((await items(page)).map((m) => m.body), ["welcome 1", "welcome 2"], "history shown");
      const { states, history } = await page.evaluate(() => ({ states: window.__states, history: window.__history }));
      const live = states.find((s) => s.state === "live");
      assert.ok(history.length >= 1 && history[0].count === 2, "one history page with the two messages");
      assert.ok(live && history[0].at <= live.at, "history rendered before the chat went live");
    }
    assert.ok(await say(pat, "hello from the participation app"));
    await waitFor(async () => (await items(olga)).some((m) => m.body === "hello from the participation app"), 10_000, "olga to see pat");
    assert.ok(await say(olga, "welcome, Pat"));
    await waitFor(async () => (await items(pat)).some((m) => m.body === "welcome, Pat"), 10_000, "pat to see olga");
    await converged([olga, pat]);
    // The organizer's moderation list follows the same room state.
    await waitFor(async () => (await moderationList()).includes("welcome, Pat"), 5000, "the moderation list");
    // The Organizer app's element is in organizer mode (the room mode
    // switch, mute and remove on Pat's messages); the Participation app's
    // is not, and both show who is here.
    const face = (page) =>
      page.evaluate(() => {
        const r = document.querySelector("parley-chat").shadowRoot;
        return {
          moderation: !r.querySelector("[part=moderation]").hidden,
          muteButtons: r.querySelectorAll("[part=mute]").length,
          presence: r.querySelector("[part=presence]").textContent,
        };
      });
    await waitFor(async () => (await face(olga)).presence.startsWith("2 here"), 10_000, "olga's presence line");
    const o = await face(olga);
    assert.equal(o.moderation, true, "the Organizer app shows the room mode switch");
    assert.ok(o.muteButtons >= 1, "and mute buttons on Pat's messages");
    await waitFor(async () => (await face(pat)).presence.startsWith("2 here"), 10_000, "pat's presence line");
    const p = await face(pat);
    assert.deepEqual([p.moderation, p.muteButtons], [false, 0], "the Participation app shows no moderation");
    await olga.screenshot({ path: join(ARTIFACTS, "embed-organizer.png") });
    await pat.screenshot({ path: join(ARTIFACTS, "embed-participant.png") });
  });

  test("the organizer deletes a participant's message; both apps show it deleted", async () => {
    assert.ok(await say(pat, "please delete me"));
    const target = await waitFor(
      async () => (await items(olga)).find((m) => m.body === "please delete me" && m.pending === "false"),
      10_000,
      "olga to see the message",
    );
    await olga.getByRole("button", { name: `Delete message ${target.seq} by Pat` }).click();
    for (const page of [pat, olga]) {
      await waitFor(
        async () => (await items(page)).find((m) => m.seq === target.seq)?.deleted,
        10_000,
        "the message to show as deleted",
      );
    }
    const r = await fetch(`${gw.url}/v1/rooms/${ROOM}/messages/${target.seq}`, {
      headers: { authorization: `Bearer ${checker}` },
    });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).deleted, true, "stored as a tombstone");
    await waitFor(
      () => olga.locator(`.moderation li[data-seq="${target.seq}"][data-deleted]`).count(),
      5000,
      "the moderation list to mark it deleted",
    );
    await converged([olga, pat]);
  });

  test("markup in a message is shown as text, never run, in both apps", async () => {
    const bodies = ["<img src=x onerror=alert(1)>", "<b>x</b>"];
    for (const b of bodies) assert.ok(await say(pat, b));
    for (const page of [olga, pat]) {
      await waitFor(
        async () => {
          const shown = (await items(page)).map((m) => m.body);
          return bodies.every((b) => shown.includes(b));
        },
        10_000,
        "both bodies to arrive",
      );
      // The text is there character for character, and no element was made of it.
      const parsed = await page.evaluate(() =>
        [...document.querySelector("parley-chat").shadowRoot.querySelectorAll("li[data-seq] [part=body]")].map(
          (b) => b.children.length,
        ),
      );
      assert.ok(parsed.every((n) => n === 0), "message bodies contain no elements");
      assert.equal(await page.evaluate(() => document.querySelectorAll("img, b").length), 0);
    }
    assert.ok((await moderationList()).includes("<img src=x onerror=alert(1)>"), "the React list shows it as text");
    assert.deepEqual(dialogs, [], "no script from a message ran");
  });

  for (const side of ["participant", "organizer"]) {
    test(`a black hole in the ${side} app: detected, composer disabled, missed messages reloaded once`, async (t) => {
      const [victim, other] = side === "participant" ? [pat, olga] : [olga, pat];
      const catchUps = countCatchUps(victim);
      const before = await victim.evaluate(() => window.__messages.length);
      proxies[side].cut("drop");
      const cutAt = Date.now();
      const missed = [1, 2, 3].map((i) => `while the ${side} is away ${i}`);
      for (const b of missed) assert.ok(await say(other, b));

      await waitNotReady(victim, DETECT_MS + 5000);
      const off = await firstStateAfter(victim, cutAt, (s) => s.state !== "live");
      assert.ok(off && off.at - cutAt <= DETECT_MS, `noticed after ${off && off.at - cutAt} ms`);
      assert.match(off.reason, /heartbeat/, "noticed by the heartbeat, not by TCP");
      t.diagnostic(`black hole noticed after ${off.at - cutAt} ms`);
      assert.equal(await composerDisabled(victim), true, "composer disabled while offline");
      const shown = (await items(victim)).map((m) => m.body);
      assert.ok(missed.every((b) => !shown.includes(b)), "nothing arrived through the black hole");

      const healAt = Date.now();
      proxies[side].heal();
      await waitReady(victim, 45_000);
      assert.equal(await composerDisabled(victim), false, "composer enabled after the catch-up");
      const states = (await victim.evaluate(() => window.__states)).filter((s) => s.at >= cutAt).map((s) => s.state);
      assert.ok(states.includes("catching-up"), `caught up before going live: ${states.join(" → ")}`);

      const server = await converged([olga, pat]);
      // Each missed message reached the app exactly once, and in one catch-up.
      const events = (await victim.evaluate(() => window.__messages)).slice(before);
      for (const b of missed) {
        const seq = server.find((m) => m.body === b)?.seq;
        assert.ok(seq, `"${b}" was stored`);
        assert.equal(events.filter((e) => e.seq === seq).length, 1, `"${b}" shown once`);
      }
      const seqs = (await victim.evaluate(() => window.__messages)).map((e) => e.seq);
      assert.equal(new Set(seqs).size, seqs.length, "no message event twice");
      assert.equal(catchUps.since(healAt), 1, "one catch-up request after the link came back");
      catchUps.stop();
    });
  }

  for (const side of ["participant", "organizer"]) {
    test(`a reset in the ${side} app: seen at once, the first retry is immediate`, async (t) => {
      const [victim, other] = side === "participant" ? [pat, olga] : [olga, pat];
      const t0 = Date.now();
      proxies[side].reset();
      const off = await waitFor(() => firstStateAfter(victim, t0, (s) => s.state === "offline"), 5000, `${side} offline`);
      assert.ok(off.at - t0 < 2000, `offline ${off.at - t0} ms after the reset`);
      assert.equal(off.retryInMs, 0, "the first retry is scheduled with no delay");
      await waitReady(victim, 10_000);
      const { gapMs } = await retryGapAfter(victim, t0);
      t.diagnostic(`next WebSocket ${gapMs} ms after the close`);
      assert.ok(gapMs <= IMMEDIATE_MS, `next WebSocket ${gapMs} ms after the close (limit ${IMMEDIATE_MS})`);
      assert.ok(await say(other, `after the ${side} reset`));
      assert.ok(await say(victim, `the ${side} is back`));
      await converged([olga, pat]);
    });
  }

  test("the script-tag embeds (module and classic) work from another origin", async () => {
    const token = mintToken(secret, "emma", "Emma");
    writeFileSync(
      join(dir, "embed", "module.html"),
      page(`<script type="module" src="${gw.url}/parley-chat.js"></script>`, token),
    );
    writeFileSync(
      join(dir, "embed", "classic.html"),
      page(`<script src="${gw.url}/parley-chat.iife.js"></script>`, token),
    );
    const p = await ctx.newPage();
    try {
      for (const kind of ["module", "classic"]) {
        await p.goto(`${origins.embed}/${kind}.html`);
        await waitReady(p, 30_000);
        assert.equal(await p.evaluate(() => location.origin), origins.embed);
        if (kind === "classic") assert.equal(await p.evaluate(() => typeof window.Parley?.connect), "function");
        assert.ok(await say(p, `hello from the ${kind} script`));
        await waitFor(async () => (await items(olga)).some((m) => m.body === `hello from the ${kind} script`), 10_000, "olga to see it");
      }
    } finally {
      await p.close();
    }
    await converged([olga, pat]);
  });

  test("a page on an origin the gateway does not allow is refused visibly, and stops", async () => {
    const token = mintToken(secret, "mallory", "Mallory");
    // The classic script needs no CORS, so the element is there; its REST
    // calls and WebSocket are refused.
    writeFileSync(
      join(dir, "embed", "refused-classic.html"),
      page(`<script src="${gw.url}/parley-chat.iife.js"></script>`, token),
    );
    // The module script is a CORS request: the browser refuses to run it.
    writeFileSync(
      join(dir, "embed", "refused-module.html"),
      `<!doctype html><script type="module" src="${gw.url}/parley-chat.js" onerror="window.__blocked = true"></script>`,
    );
    const p = await ctx.newPage();
    try {
      await p.goto(`${origins.refused}/refused-classic.html`);
      await p.waitForSelector("parley-chat[data-error=ORIGIN_NOT_ALLOWED]", { timeout: 15_000 });
      const shownAt = Date.now();
      const status = await p.evaluate(() => document.querySelector("parley-chat").shadowRoot.querySelector("[part=status]").textContent);
      assert.match(status, /ORIGIN_NOT_ALLOWED/, "the header says why");
      assert.equal(await composerDisabled(p), true);
      const errors = await p.evaluate(() => window.__states.map((s) => s.state));
      assert.equal(errors[errors.length - 1], "closed", `stopped: ${errors.join(" → ")}`);
      // And it stays stopped: no WebSocket opened after the error was shown.
      const wsBefore = await p.evaluate(() => window.__ws.length);
      await sleep(3000);
      const ws = await p.evaluate(() => window.__ws);
      assert.equal(ws.length, wsBefore, "no new WebSocket after the refusal");
      assert.ok(ws.every((w) => w.openedAt <= shownAt), "none opened after the refusal was shown");

      await p.goto(`${origins.refused}/refused-module.html`);
      await p.waitForFunction(() => window.__blocked === true, null, { timeout: 10_000 });
      assert.equal(await p.evaluate(() => customElements.get("parley-chat")), undefined);

      // The example app on a refused origin tells the user why it cannot sign in.
      await p.goto(`${origins.refusedApp}/?${new URLSearchParams({ gateway: gw.url, name: "Mal", room: ROOM })}`);
      const alert = await p.getByRole("alert").innerText({ timeout: 10_000 });
      assert.match(alert, /ORIGIN_NOT_ALLOWED/, alert);
      assert.match(alert, /--origin/, alert);
      assert.equal(await p.locator("parley-chat").count(), 0, "no chat without a sign-in");
    } finally {
      await p.close();
    }
    const m = await (await fetch(`${gw.url}/metrics`)).text();
    assert.match(m, /parley_gateway_drops_total\{reason="origin"\} [1-9]/, "the gateway counted the refusals");
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

  test("screenshots of both apps were written by this run", () => {
    for (const f of SHOTS) {
      const st = statSync(join(ARTIFACTS, f));
      assert.ok(st.size > 1000, `${f} is ${st.size} bytes`);
      assert.ok(st.mtimeMs >= runStartedAt - 1000, `${f} is older than this run`);
    }
  });
});

// ---- helpers ---------------------------------------------------------------

/** The app's URL on its own origin, pointed at its proxy to the gateway. */
function appUrl(side, { name, user, room }) {
  const q = new URLSearchParams({ gateway: `http://127.0.0.1:${proxies[side].port}`, name, user, room });
  return `${origins[side]}/?${q}`;
}

/** A plain page that embeds <parley-chat> with a script tag. */
function page(script, token) {
  return `<!doctype html><html><head><meta charset="utf-8">${script}</head>
<body><parley-chat room="${ROOM}" gateway="${gw.url}" token="${token}"></parley-chat></body></html>`;
}

/** The organizer's moderation list, as text. */
function moderationList() {
  return olga.locator(".moderation").innerText();
}

/** Counts the page's catch-up requests (`?after=`) from now on. */
function countCatchUps(page) {
  const seen = [];
  const on = (req) => {
    if (req.method() === "GET" && /\/v1\/rooms\/[^/]+\/messages\?.*after=/.test(req.url())) seen.push(Date.now());
  };
  page.on("request", on);
  return {
    since: (t) => seen.filter((x) => x >= t).length,
    stop: () => page.off("request", on),
  };
}

async function converged(pages) {
  const server = await pagesConverged(pages, () => gw.messages(ROOM, checker));
  const bodies = server.filter((m) => !m.deleted).map((m) => m.body);
  assert.equal(new Set(bodies).size, bodies.length, "no message stored twice");
  return server;
}
